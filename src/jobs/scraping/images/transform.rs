//! Resizing and pixel arithmetic shared by the thumbnail and the Open Graph card.
//!
//! Resizing goes through fast_image_resize (SIMD, Lanczos3, alpha-aware), the rest is
//! per-pixel arithmetic on 8-bit sRGB; [`modulate`] does what sharp's does, in CIE LCh.

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

/// sharp's `modulate({ brightness, saturation })`: in CIE LCh (D65), lightness times
/// `brightness` and chroma times `saturation`, hue kept, results outside sRGB clipped.
/// In Lab that is L* scaled and a*, b* scaled, so no angle is computed. A coloured
/// photo keeps its colour: the per-channel table this replaces kept only grey's
/// lightness and lost 25-45 % of the chroma.
pub fn modulate(image: &mut RgbImage, brightness: f32, saturation: f32) {
    let (to_linear, to_srgb) = (srgb_to_linear_table(), linear_to_srgb_table());
    for px in image.pixels_mut() {
        let [r, g, b] = px.0.map(|c| to_linear[usize::from(c)]);
        let fx = lab_f((0.412_456_4 * r + 0.357_576_1 * g + 0.180_437_5 * b) / WHITE_X);
        let fy = lab_f(0.212_672_9 * r + 0.715_152_2 * g + 0.072_175 * b);
        let fz = lab_f((0.019_333_9 * r + 0.119_192 * g + 0.950_304_1 * b) / WHITE_Z);
        let lightness = (116.0 * fy - 16.0) * brightness;
        let fy2 = (lightness + 16.0) / 116.0;
        let x = lab_f_inverse(fy2 + saturation * (fx - fy)) * WHITE_X;
        let y = lab_f_inverse(fy2);
        let z = lab_f_inverse(fy2 - saturation * (fy - fz)) * WHITE_Z;
        let linear = [
            3.240_454_2 * x - 1.537_138_5 * y - 0.498_531_4 * z,
            -0.969_266 * x + 1.876_010_8 * y + 0.041_556 * z,
            0.055_643_4 * x - 0.204_025_9 * y + 1.057_225_2 * z,
        ];
        px.0 = linear.map(|c| to_srgb[(c.clamp(0.0, 1.0) * 65_535.0).round() as usize]);
    }
}

/// D65's white point (Y = 1).
const WHITE_X: f32 = 0.950_47;
const WHITE_Z: f32 = 1.088_83;
const LAB_EPSILON: f32 = 216.0 / 24_389.0;
const LAB_KAPPA: f32 = 24_389.0 / 27.0;

fn lab_f(t: f32) -> f32 {
    if t > LAB_EPSILON {
        t.cbrt()
    } else {
        (LAB_KAPPA * t + 16.0) / 116.0
    }
}

fn lab_f_inverse(f: f32) -> f32 {
    let cube = f * f * f;
    if cube > LAB_EPSILON {
        cube
    } else {
        (116.0 * f - 16.0) / LAB_KAPPA
    }
}

/// 8-bit sRGB to linear light.
fn srgb_to_linear_table() -> &'static [f32; 256] {
    static TABLE: std::sync::OnceLock<[f32; 256]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        std::array::from_fn(|v| {
            let c = v as f64 / 255.0;
            let linear = if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            };
            linear as f32
        })
    })
}

/// Linear light in 1/65535 steps to 8-bit sRGB, rounded (fine enough near black, where
/// the curve is steepest, to be exact to the level).
fn linear_to_srgb_table() -> &'static [u8] {
    static TABLE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=65_535u32)
            .map(|i| {
                let c = f64::from(i) / 65_535.0;
                let srgb = if c <= 0.003_130_8 {
                    c * 12.92
                } else {
                    1.055 * c.powf(1.0 / 2.4) - 0.055
                };
                (srgb * 255.0).round().clamp(0.0, 255.0) as u8
            })
            .collect()
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_scales_up_and_down_keeping_the_ratio() {
        assert_eq!(inside(4000, 3000, 1200, 630), (840, 630));
        assert_eq!(inside(600, 200, 1200, 630), (1200, 400));
        assert_eq!(inside(376, 62, 280, 144), (280, 46));
    }

    /// Golden values: sharp 0.34.5 (libvips 8.17.3, bench/images), `modulate` on a
    /// one-pixel raw image of each colour, as the original calls it for the card's
    /// background (brightness 0.6) and its bar (0.5, saturation 0.7).
    #[test]
    fn modulate_matches_sharps_on_saturated_colours() {
        let cases: [([u8; 3], [u8; 3], [u8; 3]); 7] = [
            ([200, 40, 40], [145, 0, 0], [112, 5, 12]),
            ([40, 160, 60], [0, 99, 0], [0, 81, 17]),
            ([30, 60, 200], [0, 31, 163], [2, 29, 118]),
            ([240, 200, 30], [141, 114, 0], [117, 95, 0]),
            ([128, 128, 128], [75, 75, 75], [63, 63, 63]),
            ([255, 255, 255], [145, 145, 145], [119, 119, 119]),
            ([180, 60, 200], [125, 0, 147], [97, 19, 110]),
        ];
        for (colour, background, bar) in cases {
            for ((brightness, saturation), want) in [((0.6, 1.0), background), ((0.5, 0.7), bar)] {
                let mut image = RgbImage::from_pixel(1, 1, Rgb(colour));
                modulate(&mut image, brightness, saturation);
                let got = image.get_pixel(0, 0).0;
                assert!(
                    got.iter().zip(want).all(|(g, w)| g.abs_diff(w) <= 1),
                    "{colour:?} at {brightness}/{saturation}: {got:?}, sharp {want:?}"
                );
            }
        }
    }

    /// Chroma of the result, computed here independently (f64, the CIE formulas): kept
    /// when only the lightness is changed, where the old per-channel table lost it.
    #[test]
    fn darkening_keeps_a_saturated_colours_chroma() {
        fn lch(rgb: [u8; 3]) -> (f64, f64) {
            let lin = rgb.map(|c| {
                let c = f64::from(c) / 255.0;
                if c <= 0.04045 {
                    c / 12.92
                } else {
                    ((c + 0.055) / 1.055).powf(2.4)
                }
            });
            let xyz = [
                (0.4124564 * lin[0] + 0.3575761 * lin[1] + 0.1804375 * lin[2]) / 0.95047,
                0.2126729 * lin[0] + 0.7151522 * lin[1] + 0.0721750 * lin[2],
                (0.0193339 * lin[0] + 0.1191920 * lin[1] + 0.9503041 * lin[2]) / 1.08883,
            ];
            let f = xyz.map(|t| {
                if t > 216.0 / 24389.0 {
                    t.cbrt()
                } else {
                    (24389.0 / 27.0 * t + 16.0) / 116.0
                }
            });
            let (a, b) = (500.0 * (f[0] - f[1]), 200.0 * (f[1] - f[2]));
            (116.0 * f[1] - 16.0, a.hypot(b))
        }
        // A muted orange that stays inside sRGB at 60 % lightness.
        let colour = [190, 120, 80];
        let mut image = RgbImage::from_pixel(1, 1, Rgb(colour));
        modulate(&mut image, 0.6, 1.0);
        let (l0, c0) = lch(colour);
        let (l1, c1) = lch(image.get_pixel(0, 0).0);
        assert!((l1 - 0.6 * l0).abs() < 0.6, "L* {l0:.1} -> {l1:.1}");
        assert!((c1 - c0).abs() / c0 < 0.03, "C* {c0:.1} -> {c1:.1}");
    }
}
