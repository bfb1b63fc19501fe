//! Resizing and pixel arithmetic shared by the thumbnail and the Open Graph card.
//!
//! Resizing goes through fast_image_resize (SIMD, Lanczos3, alpha-aware), the rest is
//! per-pixel arithmetic on 8-bit sRGB. sharp's `modulate` works in LCh; the lightness
//! table below reproduces its brightness on neutral tones, which is what the eye
//! compares in a darkened, blurred background.

use fast_image_resize::{ResizeOptions, Resizer};
use image::{Rgb, RgbImage, Rgba, RgbaImage};

use super::ImageError;
use super::codec::Pixels;

fn resizer_failed(e: impl std::fmt::Display) -> ImageError {
    ImageError::Encode(format!("resize: {e}"))
}

/// Resizes `pixels` to exactly `width`×`height`, cropping the centre to keep the aspect
/// ratio (sharp's `fit: cover, position: centre`).
pub fn cover(pixels: &Pixels, width: u32, height: u32) -> Result<Pixels, ImageError> {
    Ok(match pixels {
        Pixels::Rgb(src) => Pixels::Rgb(cover_rgb(src, width, height)?),
        Pixels::Rgba(src) => {
            let mut dst = RgbaImage::new(width, height);
            Resizer::new()
                .resize(src, &mut dst, &centre_crop())
                .map_err(resizer_failed)?;
            Pixels::Rgba(dst)
        }
    })
}

pub fn cover_rgb(src: &RgbImage, width: u32, height: u32) -> Result<RgbImage, ImageError> {
    let mut dst = RgbImage::new(width, height);
    Resizer::new()
        .resize(src, &mut dst, &centre_crop())
        .map_err(resizer_failed)?;
    Ok(dst)
}

fn centre_crop() -> ResizeOptions {
    ResizeOptions::new().fit_into_destination(Some((0.5, 0.5)))
}

/// The size of `width`×`height` scaled to fit inside `max_w`×`max_h`, up or down
/// (sharp's `fit: inside` without `withoutEnlargement`).
pub fn inside(width: u32, height: u32, max_w: u32, max_h: u32) -> (u32, u32) {
    let scale = f64::min(
        f64::from(max_w) / f64::from(width),
        f64::from(max_h) / f64::from(height),
    );
    let fit = |side: u32, max: u32| ((f64::from(side) * scale).round() as u32).clamp(1, max);
    (fit(width, max_w), fit(height, max_h))
}

/// `pixels` resized to fit inside `max_w`×`max_h`, as RGBA (opaque when the source is).
pub fn fit_inside(pixels: &Pixels, max_w: u32, max_h: u32) -> Result<RgbaImage, ImageError> {
    let (w, h) = pixels.dimensions();
    let (tw, th) = inside(w, h, max_w, max_h);
    let rgba = match pixels {
        Pixels::Rgba(p) => return resize_rgba(p, tw, th),
        Pixels::Rgb(p) => {
            let mut dst = RgbImage::new(tw, th);
            Resizer::new()
                .resize(p, &mut dst, &ResizeOptions::new())
                .map_err(resizer_failed)?;
            dst
        }
    };
    Ok(opaque(&rgba))
}

pub fn resize_rgba(src: &RgbaImage, width: u32, height: u32) -> Result<RgbaImage, ImageError> {
    let mut dst = RgbaImage::new(width, height);
    Resizer::new()
        .resize(src, &mut dst, &ResizeOptions::new())
        .map_err(resizer_failed)?;
    Ok(dst)
}

fn opaque(rgb: &RgbImage) -> RgbaImage {
    RgbaImage::from_fn(rgb.width(), rgb.height(), |x, y| {
        let Rgb([r, g, b]) = *rgb.get_pixel(x, y);
        Rgba([r, g, b, 255])
    })
}

/// The pixels without alpha, transparent parts flattened onto black (libvips' default
/// background when an alpha image becomes a JPEG).
pub fn flatten(pixels: &RgbaImage) -> RgbImage {
    RgbImage::from_fn(pixels.width(), pixels.height(), |x, y| {
        let Rgba([r, g, b, a]) = *pixels.get_pixel(x, y);
        let scale = |c: u8| ((u16::from(c) * u16::from(a) + 127) / 255) as u8;
        Rgb([scale(r), scale(g), scale(b)])
    })
}

/// Draws `top` over `base` at (`left`, `y`), blending by `top`'s alpha.
pub fn overlay(base: &mut RgbImage, top: &RgbaImage, left: u32, y: u32) {
    for (x, row_y, px) in top.enumerate_pixels() {
        let (bx, by) = (left + x, y + row_y);
        if bx >= base.width() || by >= base.height() {
            continue;
        }
        let Rgba([r, g, b, a]) = *px;
        let dst = base.get_pixel_mut(bx, by);
        let a = u16::from(a);
        for (d, s) in dst.0.iter_mut().zip([r, g, b]) {
            *d = ((u16::from(s) * a + u16::from(*d) * (255 - a) + 127) / 255) as u8;
        }
    }
}

/// A table multiplying CIE lightness by `factor` on each 8-bit sRGB value.
pub fn lightness_table(factor: f64) -> [u8; 256] {
    let mut table = [0u8; 256];
    for (v, out) in table.iter_mut().enumerate() {
        let lightness = lab_lightness(srgb_to_linear(v as f64 / 255.0)) * factor;
        let srgb = linear_to_srgb(lab_luminance(lightness));
        *out = (srgb * 255.0).round().clamp(0.0, 255.0) as u8;
    }
    table
}

/// Applies a lightness table and scales saturation around each pixel's luma.
pub fn modulate(image: &mut RgbImage, table: &[u8; 256], saturation: f32) {
    for px in image.pixels_mut() {
        let [r, g, b] = px.0.map(|c| f32::from(table[usize::from(c)]));
        let luma = 0.299 * r + 0.587 * g + 0.114 * b;
        px.0 = [r, g, b].map(|c| (luma + (c - luma) * saturation).round().clamp(0.0, 255.0) as u8);
    }
}

/// Mean luma of `pixels` at thumbnail scale: `0.299 R + 0.587 G + 0.114 B` of the
/// rounded channel means of a version fitted inside 100×100.
pub fn mean_luma(pixels: &RgbImage) -> Result<f64, ImageError> {
    let (w, h) = inside(pixels.width(), pixels.height(), 100, 100);
    let mut small = RgbImage::new(w, h);
    Resizer::new()
        .resize(pixels, &mut small, &ResizeOptions::new())
        .map_err(resizer_failed)?;
    let mut sums = [0u64; 3];
    for px in small.pixels() {
        for (s, c) in sums.iter_mut().zip(px.0) {
            *s += u64::from(c);
        }
    }
    let n = u64::from(w) * u64::from(h);
    let [r, g, b] = sums.map(|s| (s as f64 / n as f64).round());
    Ok(0.299 * r + 0.587 * g + 0.114 * b)
}

fn srgb_to_linear(c: f64) -> f64 {
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

fn linear_to_srgb(c: f64) -> f64 {
    if c <= 0.003_130_8 {
        c * 12.92
    } else {
        1.055 * c.powf(1.0 / 2.4) - 0.055
    }
}

fn lab_lightness(y: f64) -> f64 {
    if y > 216.0 / 24_389.0 {
        116.0 * y.cbrt() - 16.0
    } else {
        y * 24_389.0 / 27.0
    }
}

fn lab_luminance(l: f64) -> f64 {
    if l > 8.0 {
        ((l + 16.0) / 116.0).powi(3)
    } else {
        l * 27.0 / 24_389.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_scales_up_and_down_keeping_the_ratio() {
        assert_eq!(inside(4000, 3000, 1200, 630), (840, 630));
        assert_eq!(inside(600, 200, 1200, 630), (1200, 400));
        assert_eq!(inside(376, 62, 280, 144), (280, 46));
    }

    #[test]
    fn lightness_table_keeps_black_and_white_and_darkens_the_middle() {
        let half = lightness_table(0.5);
        assert_eq!(half[0], 0);
        let same = lightness_table(1.0);
        assert!(
            same.iter()
                .enumerate()
                .all(|(i, v)| i.abs_diff(usize::from(*v)) <= 1)
        );
        // Halving L* of white (100) gives L* 50, which is sRGB 119.
        assert!((118..=120).contains(&half[255]), "{}", half[255]);
    }
}
