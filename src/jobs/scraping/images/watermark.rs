//! The logo stamped on Open Graph cards, in its two colourings.
//!
//! The file (assets/watermark.png by default, `IMAGES_WATERMARK_PATH` to replace it) is
//! an RGBA image in two inks: neutral pixels are the wordmark, coloured pixels the
//! ticket. Only its alpha is kept; the inks are repainted per card, white and pink on
//! dark photos, black and magenta on light ones, as the original did with its SVG.
//! Both colourings are prepared once per run, already at their final size.

use image::{ImageFormat, Rgba, RgbaImage};

use super::ImageError;
use super::transform::{inside, resize_rgba};

const BUILT_IN: &[u8] = include_bytes!("../../../../assets/watermark.png");

/// The box the logo is fitted into and its distance from the card's bottom edge.
pub const MAX_WIDTH: u32 = 280;
pub const MAX_HEIGHT: u32 = 144;
pub const BOTTOM_MARGIN: u32 = 12;

const TEXT_ON_DARK: [u8; 3] = [0xff, 0xff, 0xff];
const ACCENT_ON_DARK: [u8; 3] = [0xf2, 0x65, 0x9c];
const TEXT_ON_LIGHT: [u8; 3] = [0x00, 0x00, 0x00];
const ACCENT_ON_LIGHT: [u8; 3] = [0xa6, 0x16, 0x5c];

pub struct Watermark {
    on_dark: RgbaImage,
    on_light: RgbaImage,
}

impl Watermark {
    /// The built-in logo.
    pub fn built_in() -> Result<Watermark, ImageError> {
        Watermark::from_png(BUILT_IN)
    }

    pub fn from_png(bytes: &[u8]) -> Result<Watermark, ImageError> {
        let logo = image::load_from_memory_with_format(bytes, ImageFormat::Png)
            .map_err(|e| ImageError::Corrupt(format!("watermark: {e}")))?
            .into_rgba8();
        let (w, h) = inside(logo.width(), logo.height(), MAX_WIDTH, MAX_HEIGHT);
        let paint = |text: [u8; 3], accent: [u8; 3]| {
            let painted = RgbaImage::from_fn(logo.width(), logo.height(), |x, y| {
                let Rgba([r, g, b, a]) = *logo.get_pixel(x, y);
                let neutral = r.abs_diff(g) < 24 && g.abs_diff(b) < 24 && r.abs_diff(b) < 24;
                let [r, g, b] = if neutral { text } else { accent };
                Rgba([r, g, b, a])
            });
            resize_rgba(&painted, w, h)
        };
        Ok(Watermark {
            on_dark: paint(TEXT_ON_DARK, ACCENT_ON_DARK)?,
            on_light: paint(TEXT_ON_LIGHT, ACCENT_ON_LIGHT)?,
        })
    }

    pub fn for_background(&self, dark: bool) -> &RgbaImage {
        if dark { &self.on_dark } else { &self.on_light }
    }
}
