#!/usr/bin/env python3
"""Draw assets/watermark.png: the "revendiste" logo stamped on OG images.

A pink ticket glyph on the left and the wordmark in white on the right, on a
transparent background. Every pixel that is not fully transparent has exactly
one of two colours, #ffffff (text ink) or #f2659c (accent ink); antialiasing
lives in the alpha channel only, so the runtime can recolour each ink exactly
(see assets/README.md).

Usage (needs Pillow and the DejaVu fonts of Debian's fonts-dejavu-core):

    python3 assets/make-watermark.py [--font PATH] [--out PATH]
"""

import argparse
import math
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFont

WIDTH, HEIGHT = 1200, 200
SUPERSAMPLE = 4  # everything is drawn 4x larger as a coverage mask, then box-filtered down

TEXT_INK = (0xFF, 0xFF, 0xFF)
ACCENT_INK = (0xF2, 0x65, 0x9C)

WORDMARK = "revendiste"
DEFAULT_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"

# Layout, in final pixels.
MARGIN = 12
TICKET_W, TICKET_H = 236, 132
TICKET_TILT_DEG = 10  # counter-clockwise
GAP = 30  # between the ticket's bounding box and the wordmark


def ticket_mask(scale: int) -> Image.Image:
    """Coverage mask (mode L, 0..255) of an untilted ticket, drawn at `scale`."""
    w, h = TICKET_W * scale, TICKET_H * scale
    mask = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(mask)
    d.rounded_rectangle((0, 0, w - 1, h - 1), radius=int(18 * scale), fill=255)

    # Semicircular notches halfway down both short sides.
    r = int(19 * scale)
    cy = h // 2
    d.ellipse((-r, cy - r, r, cy + r), fill=0)
    d.ellipse((w - 1 - r, cy - r, w - 1 + r, cy + r), fill=0)

    # Perforation: a column of round holes separating the stub (right) from the body.
    px = int(w * 0.70)
    hole = int(5.5 * scale)
    n = 7
    top, bottom = int(17 * scale), h - int(17 * scale)
    for i in range(n):
        y = top + (bottom - top) * i / (n - 1)
        d.ellipse((px - hole, y - hole, px + hole, y + hole), fill=0)

    # A star on the body: the "event" on the ticket, punched out of the ink.
    cx, cy2 = int(w * 0.35), h // 2
    outer, inner = 34 * scale, 14 * scale
    pts = []
    for k in range(10):
        rad = outer if k % 2 == 0 else inner
        a = -math.pi / 2 + k * math.pi / 5
        pts.append((cx + rad * math.cos(a), cy2 + rad * math.sin(a)))
    d.polygon(pts, fill=0)
    return mask


def text_mask(font_path: str, scale: int, max_w: int, max_h: int):
    """Coverage mask of the wordmark, the largest size fitting max_w x max_h (final px)."""
    size = 200
    while True:
        font = ImageFont.truetype(font_path, size * scale)
        l, t, r, b = font.getbbox(WORDMARK)
        if (r - l) <= max_w * scale and (b - t) <= max_h * scale:
            break
        size -= 1
    mask = Image.new("L", (r - l, b - t), 0)
    ImageDraw.Draw(mask).text((-l, -t), WORDMARK, font=font, fill=255)
    return mask


def downsample(mask: Image.Image, scale: int) -> Image.Image:
    w, h = mask.size
    # Pad to a multiple of the scale so the box filter averages whole cells.
    pw, ph = -(-w // scale) * scale, -(-h // scale) * scale
    padded = Image.new("L", (pw, ph), 0)
    padded.paste(mask, (0, 0))
    return padded.resize((pw // scale, ph // scale), Image.Resampling.BOX)


def main() -> None:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--font", default=DEFAULT_FONT, help="bold sans TrueType font")
    ap.add_argument("--out", default=str(here / "watermark.png"))
    args = ap.parse_args()

    s = SUPERSAMPLE
    ticket = ticket_mask(s).rotate(
        TICKET_TILT_DEG, resample=Image.Resampling.BICUBIC, expand=True
    )
    ticket = downsample(ticket, s)
    tw, th = ticket.size

    text_left = MARGIN + tw + GAP
    text = downsample(text_mask(args.font, s, WIDTH - MARGIN - text_left, HEIGHT - 2 * MARGIN), s)
    xw, xh = text.size

    accent_alpha = Image.new("L", (WIDTH, HEIGHT), 0)
    accent_alpha.paste(ticket, (MARGIN, (HEIGHT - th) // 2))
    text_alpha = Image.new("L", (WIDTH, HEIGHT), 0)
    # Centre the wordmark vertically and in the space right of the ticket.
    free = WIDTH - MARGIN - text_left
    text_alpha.paste(text, (text_left + (free - xw) // 2, (HEIGHT - xh) // 2))

    # The two inks must never share a pixel, or recolouring could not be exact.
    overlap = ImageChops.multiply(accent_alpha, text_alpha)
    assert overlap.getbbox() is None, "ticket and wordmark overlap"

    # Solid ink wherever a shape has any coverage; the coverage itself goes to alpha.
    alpha = ImageChops.lighter(accent_alpha, text_alpha)
    rgb = Image.new("RGB", (WIDTH, HEIGHT), (0, 0, 0))
    rgb.paste(Image.new("RGB", (WIDTH, HEIGHT), TEXT_INK), (0, 0), text_alpha.point(lambda v: 255 if v else 0))
    rgb.paste(Image.new("RGB", (WIDTH, HEIGHT), ACCENT_INK), (0, 0), accent_alpha.point(lambda v: 255 if v else 0))
    out = Image.merge("RGBA", (*rgb.split(), alpha))

    # Check the promise made in assets/README.md.
    raw = out.tobytes()
    seen = {tuple(raw[i : i + 3]) for i in range(0, len(raw), 4) if raw[i + 3]}
    assert seen <= {TEXT_INK, ACCENT_INK}, seen

    out.save(args.out, optimize=True)
    print(f"wrote {args.out}: {WIDTH}x{HEIGHT} RGBA")


if __name__ == "__main__":
    main()
