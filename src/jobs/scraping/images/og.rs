//! The Open Graph card shared links show: 1200×630 JPEG, the original's look.
//!
//! Layers, bottom up: the photo covering the card, blurred (σ 30) and darkened (60 %
//! lightness); the whole photo fitted inside the card and centred; a frosted bar over
//! the bottom 160 px (the area re-blurred with 50 px of context above it so its top
//! edge has no seam, darker and less saturated, faded in from transparent); the logo,
//! centred 12 px above the bottom edge, white on dark photos and black on light ones.
//! A photo is dark when the luma of its mean colour is at most 140.

use std::borrow::Cow;

use image::{RgbImage, RgbaImage, imageops};

use super::ImageError;
use super::codec::{self, Pixels};
use super::transform::{cover_rgb, fit_inside, flatten, mean_luma, modulate, overlay};
use super::watermark::{self, Watermark};

pub const WIDTH: u32 = 1200;
pub const HEIGHT: u32 = 630;
pub const JPEG_QUALITY: u8 = 85;
/// At or below this luma a photo counts as dark.
pub const DARK_LUMA: f64 = 140.0;

const BACKGROUND_SIGMA: f32 = 30.0;
const BACKGROUND_LIGHTNESS: f32 = 0.6;
const BAR_HEIGHT: u32 = 160;
const BAR_SIGMA: f32 = 20.0;
const BAR_CONTEXT: u32 = 50;
const BAR_LIGHTNESS: f32 = 0.5;
const BAR_SATURATION: f32 = 0.7;

/// The card's JPEG bytes, and whether the photo counted as dark.
pub fn card(pixels: &Pixels, logo: &Watermark) -> Result<(Vec<u8>, bool), ImageError> {
    let flat = match pixels {
        Pixels::Rgb(p) => Cow::Borrowed(p),
        Pixels::Rgba(p) => Cow::Owned(flatten(p)),
    };
    let dark = mean_luma(&flat)? <= DARK_LUMA;

    let mut canvas = imageops::fast_blur(&cover_rgb(&flat, WIDTH, HEIGHT)?, BACKGROUND_SIGMA);
    modulate(&mut canvas, BACKGROUND_LIGHTNESS, 1.0);

    let fitted = fit_inside(pixels, WIDTH, HEIGHT)?;
    overlay(
        &mut canvas,
        &fitted,
        (WIDTH - fitted.width()).div_ceil(2),
        (HEIGHT - fitted.height()).div_ceil(2),
    );

    frost_bar(&mut canvas);

    let mark = logo.for_background(dark);
    overlay(
        &mut canvas,
        mark,
        (WIDTH - mark.width()).div_ceil(2),
        HEIGHT - mark.height() - watermark::BOTTOM_MARGIN,
    );
    Ok((codec::jpeg(&canvas, JPEG_QUALITY)?, dark))
}

/// Frosts the bottom bar in place.
fn frost_bar(canvas: &mut RgbImage) {
    let bar_top = HEIGHT - BAR_HEIGHT;
    let context = BAR_CONTEXT.min(bar_top);
    let area =
        imageops::crop_imm(canvas, 0, bar_top - context, WIDTH, BAR_HEIGHT + context).to_image();
    let mut frosted = imageops::fast_blur(&area, BAR_SIGMA);
    modulate(&mut frosted, BAR_LIGHTNESS, BAR_SATURATION);
    let bar = RgbaImage::from_fn(WIDTH, BAR_HEIGHT, |x, y| {
        let [r, g, b] = frosted.get_pixel(x, y + context).0;
        image::Rgba([r, g, b, feather(y)])
    });
    overlay(canvas, &bar, 0, bar_top);
}

/// The bar's opacity down its rows: 0 at the top, 0.7 at 35 %, 1 at the bottom.
fn feather(row: u32) -> u8 {
    let t = (f64::from(row) + 0.5) / f64::from(BAR_HEIGHT);
    let opacity = if t < 0.35 {
        0.7 * t / 0.35
    } else {
        0.7 + 0.3 * (t - 0.35) / 0.65
    };
    (opacity * 255.0).round() as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fades_in_from_the_top() {
        assert!(feather(0) < 5);
        assert!((175..=182).contains(&feather(56)), "{}", feather(56));
        assert!(feather(BAR_HEIGHT - 1) > 252);
        assert!((1..BAR_HEIGHT).all(|r| feather(r) >= feather(r - 1)));
    }
}
