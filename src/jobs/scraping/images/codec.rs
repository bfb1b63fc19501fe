//! Bytes to pixels and back: format sniffing, bounded decoding, WebP and JPEG encoding.
//!
//! Decoding trusts nothing the server said. The format comes from the first bytes, the
//! dimensions are read from the header and checked against the pixel budget before a
//! single pixel is allocated, and the decoder itself runs under an allocation limit, so
//! a decompression bomb is refused rather than obeyed. Everything here is CPU-bound and
//! synchronous; the pipeline runs it on blocking threads.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, ImageReader, Limits, RgbImage, RgbaImage};

use super::ImageError;

/// WebP cannot encode a side longer than this, so no source may have one.
pub const MAX_SIDE: u32 = 16_383;

/// Decoded pixels, with alpha only when the source has it.
pub enum Pixels {
    Rgb(RgbImage),
    Rgba(RgbaImage),
}

impl Pixels {
    pub fn dimensions(&self) -> (u32, u32) {
        match self {
            Pixels::Rgb(p) => p.dimensions(),
            Pixels::Rgba(p) => p.dimensions(),
        }
    }
}

/// The formats we accept, told by their signatures.
pub fn sniff(bytes: &[u8]) -> Result<ImageFormat, ImageError> {
    match bytes {
        [0xFF, 0xD8, 0xFF, ..] => Ok(ImageFormat::Jpeg),
        [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Ok(ImageFormat::Png),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => Ok(ImageFormat::WebP),
        _ => Err(ImageError::NotAnImage(describe_start(bytes))),
    }
}

/// The first bytes of a body that is not an image, printable, for the error message.
fn describe_start(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(16)];
    if head.is_empty() {
        return "the body is empty".to_string();
    }
    if head.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("it starts with `{}`", String::from_utf8_lossy(head))
    } else {
        let hex: Vec<String> = head.iter().map(|b| format!("{b:02x}")).collect();
        format!("it starts with bytes {}", hex.join(" "))
    }
}

/// Decodes `bytes` into 8-bit RGB or RGBA, refusing anything over `max_pixels`.
pub fn decode(bytes: &[u8], max_pixels: u64) -> Result<Pixels, ImageError> {
    let format = sniff(bytes)?;
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(ImageError::Corrupt(
            "the JPEG is truncated (no end-of-image marker)".to_string(),
        ));
    }
    let (width, height) = dimensions(bytes)?;
    if !within_limits(width, height, max_pixels) {
        return Err(ImageError::TooManyPixels {
            width,
            height,
            max_pixels,
        });
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    // RGBA at 8 bits plus the decoder's own working memory.
    limits.max_alloc = Some(max_pixels.saturating_mul(4).saturating_add(16 << 20));
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(|e| refused(e, max_pixels))?;
    let image = DynamicImage::from_decoder(decoder).map_err(|e| refused(e, max_pixels))?;
    Ok(if image.color().has_alpha() {
        Pixels::Rgba(image.into_rgba8())
    } else {
        Pixels::Rgb(image.into_rgb8())
    })
}

/// Whether an image of this size is one [`decode`] accepts: at most `max_pixels` and
/// `MAX_SIDE` on its longer side.
pub fn within_limits(width: u32, height: u32, max_pixels: u64) -> bool {
    u64::from(width) * u64::from(height) <= max_pixels && width.max(height) <= MAX_SIDE
}

/// Width and height from the header alone, without limits (nothing is allocated for
/// pixels), so an error can say how large the image claims to be and the pipeline can
/// reserve memory for it before decoding.
pub fn dimensions(bytes: &[u8]) -> Result<(u32, u32), ImageError> {
    let mut probe = ImageReader::with_format(Cursor::new(bytes), sniff(bytes)?);
    probe.no_limits();
    probe
        .into_dimensions()
        .map_err(|e| ImageError::Corrupt(e.to_string()))
}

fn refused(error: image::ImageError, max_pixels: u64) -> ImageError {
    match error {
        image::ImageError::Limits(e) => ImageError::Corrupt(format!(
            "over the decoding limits ({max_pixels} pixels): {e}"
        )),
        other => ImageError::Corrupt(other.to_string()),
    }
}

/// Whether a JPEG ends with its end-of-image marker. The decoder fills a truncated
/// stream with grey instead of failing; a half-grey photo must not be published.
/// Some encoders append padding or trailers after the marker, so the last few KiB are
/// searched rather than the last two bytes.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(4096)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Lossy WebP at `quality` (libwebp's default method 4, as sharp's `effort: 4`).
pub fn webp(pixels: &Pixels, quality: f32) -> Result<Vec<u8>, ImageError> {
    let encoder = match pixels {
        Pixels::Rgb(p) => webp::Encoder::from_rgb(p.as_raw(), p.width(), p.height()),
        Pixels::Rgba(p) => webp::Encoder::from_rgba(p.as_raw(), p.width(), p.height()),
    };
    encoder
        .encode_simple(false, quality)
        .map(|memory| memory.to_vec())
        .map_err(|e| ImageError::Encode(format!("WebP: {e:?}")))
}

/// Baseline JPEG at `quality`, 4:2:0 like libvips' default.
pub fn jpeg(pixels: &RgbImage, quality: u8) -> Result<Vec<u8>, ImageError> {
    let (width, height) = pixels.dimensions();
    let (Ok(w), Ok(h)) = (u16::try_from(width), u16::try_from(height)) else {
        return Err(ImageError::Encode(format!(
            "JPEG: {width}x{height} is too large"
        )));
    };
    let mut out = Vec::with_capacity(256 * 1024);
    jpeg_encoder::Encoder::new(&mut out, quality)
        .encode(pixels.as_raw(), w, h, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| ImageError::Encode(format!("JPEG: {e}")))?;
    Ok(out)
}
