#!/usr/bin/env bash
# Materialise the image benchmark's photo set (not committed: ~30 MB) and print its directory.
#
#   bench/images/photos.sh            # -> $PHOTOS_DIR, default ~/.cache/run-job/bench-photos
#
# 19 real photographs at event-flyer / hero sizes (long side 1080-4000 px): 16 JPEG (baseline and
# progressive, 4:2:0 / 4:2:2 / 4:4:4 chroma, some as shipped, some cropped or resized) and 3 PNG.
# They come from Debian's wallpaper packages (apt-get download, dpkg-deb -x), and are cropped,
# resized and encoded with Pillow in a venv (bench/lib.sh's, made when missing). Does nothing when
# the set is already complete.
# Sources and licences: SOURCES.tsv in the set's directory.
set -euo pipefail
# BENCH_CACHE, BENCH_VENV, PILLOW_VERSION, ensure_bench_venv, as_root.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

SET_VERSION=1
CACHE="$BENCH_CACHE"
PHOTOS_DIR="${PHOTOS_DIR:-$CACHE/bench-photos}"
SRC="$CACHE/bench-photos-src"
VENV="$BENCH_VENV"
PACKAGES=(lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 mate-backgrounds)

log() { echo "photos.sh: $*" >&2; }

if [[ -f "$PHOTOS_DIR/.complete" && "$(cat "$PHOTOS_DIR/.complete")" == "$SET_VERSION" ]]; then
  echo "$PHOTOS_DIR"
  exit 0
fi
if [[ -d "$PHOTOS_DIR" && -n "$(ls -A "$PHOTOS_DIR")" && ! -f "$PHOTOS_DIR/.bench-photos" ]]; then
  log "$PHOTOS_DIR exists, is not empty and is not a photo set made by this script; remove it or set PHOTOS_DIR"
  exit 1
fi

# 1. The Debian packages, downloaded once and unpacked into $SRC/root.
mkdir -p "$SRC/debs" "$SRC/root"
for pkg in "${PACKAGES[@]}"; do
  if ! compgen -G "$SRC/debs/${pkg}_*.deb" >/dev/null; then
    log "apt-get download $pkg"
    if ! (cd "$SRC/debs" && apt-get download "$pkg" >&2 2>/dev/null); then
      log "apt-get download failed; running apt-get update once and retrying"
      as_root apt-get update >&2
      (cd "$SRC/debs" && apt-get download "$pkg" >&2)
    fi
  fi
  deb=$(compgen -G "$SRC/debs/${pkg}_*.deb" | sort | tail -n 1)
  stamp="$SRC/root/.$(basename "$deb").unpacked"
  if [[ ! -f "$stamp" ]]; then
    dpkg-deb -x "$deb" "$SRC/root"
    touch "$stamp"
  fi
done

# 2. Pillow in a venv of its own.
ensure_bench_venv

# 3. Crop / resize / encode into a temporary directory, then move it into place.
TMP="$PHOTOS_DIR.tmp.$$"
trap 'rm -rf "$TMP"' EXIT
rm -rf "$TMP"
mkdir -p "$TMP"
versions=$(for deb in "$SRC"/debs/*.deb; do
  printf '%s=%s ' "$(dpkg-deb -f "$deb" Package)" "$(dpkg-deb -f "$deb" Version)"
done)

"$VENV/bin/python" - "$SRC/root/usr/share/backgrounds" "$TMP" "$versions" <<'PY'
import shutil
import sys
from pathlib import Path

from PIL import Image

src, out, versions = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3].split()
pkg_version = dict(v.split("=", 1) for v in versions)

L16 = "lomiri-wallpapers-16.04"
L20 = "lomiri-wallpapers-20.04"
MATE = "mate-backgrounds"

# (output name, package, path under /usr/share/backgrounds, licence, crop box or None,
#  target size or None, encoding). A crop is (left, top, right, bottom) in source pixels;
# "asis" copies the shipped bytes.
PLAN = [
    ("aitzgorri.jpg", L16, "aitzgorri_by_Aitzol_Berasategi.jpg", "CC-BY-4.0", None, None, "asis"),
    ("bridge-4k.jpg", L16, "Bridge_by_Sander_Klootwijk.jpg", "CC-BY-SA-4.0", None, (3840, 2160), "jpeg90"),
    ("dragonfly.jpg", L16, "Dragonfly_by_Bolly.jpg", "CC-BY-SA-4.0", None, (4000, 3000), "jpeg88p"),
    ("fig.jpg", L16, "Picture_0B_by_freespace.jpg", "CC-BY-4.0", None, None, "asis"),
    ("brushes.jpg", L16, "Picture_1A_by_freespace.jpg", "CC-BY-4.0", None, None, "asis"),
    ("wine-story.jpg", L16, "Wine_by_Jakkub_Mede.jpg", "CC-BY-4.0", (201, 0, 2359, 3837), (1080, 1920), "jpeg85"),
    ("friends-flyer.jpg", L16, "friends_by_Aitzol_Berasategi.jpg", "CC-BY-4.0", (0, 259, 2056, 2829), (1600, 2000), "jpeg85p"),
    ("lamps.jpg", L16, "free_by_Peter_Nerlich.jpg", "CC-BY-SA-4.0", None, None, "asis"),
    ("clock.png", L16, "greentock_by_Peter_Nerlich.jpg", "CC-BY-SA-4.0", None, (1920, 1440), "png"),
    ("life-hero.jpg", L16, "life_by_Aitzol_Berasategi.jpg", "CC-BY-4.0", (0, 160, 3088, 1897), (1920, 1080), "jpeg85"),
    ("picos.jpg", L16, "picosdeeuropa_by_Aitzol_Berasategi.jpg", "CC-BY-4.0", None, None, "asis"),
    ("seeding.jpg", L16, "seeding_by_Clements_Engelhardt.jpg", "CC0-1.0", None, (2560, 1440), "jpeg90p"),
    ("sunset-og.jpg", L16, "sunset_by_Aitzol_Berasategi.jpg", "CC-BY-4.0", (0, 306, 4272, 2542), (1200, 628), "jpeg85"),
    ("umang.jpg", L16, "umang_by_Abhishek_Mudgal.jpg", "CC-BY-4.0", None, None, "asis"),
    ("kleiber-square.jpg", L20, "Kleiber_by_Lukas_Baubkus.jpg", "CC-BY-SA-3.0", (1118, 0, 4509, 3391), (1080, 1080), "jpeg85"),
    ("storm.jpg", MATE, "mate/nature/Storm.jpg", "GPL-2+", None, None, "asis"),
    ("two-wings.jpg", MATE, "mate/nature/TwoWings.jpg", "GPL-2+", None, None, "asis"),
    ("wood.png", MATE, "mate/nature/Wood.jpg", "GPL-2+", None, (1600, 1200), "png"),
    ("raindrops.png", MATE, "mate/nature/RainDrops.jpg", "GPL-2+", None, None, "png"),
]

rows = ["file\twidth\theight\tbytes\tpackage\tversion\toriginal\tlicence\tderivation"]
for name, pkg, rel, licence, crop, size, enc in PLAN:
    path = src / rel
    if not path.is_file():
        sys.exit(f"photos.sh: {path} missing from {pkg}; the package changed, update PLAN")
    dst = out / name
    if enc == "asis":
        shutil.copyfile(path, dst)
        how = "shipped bytes"
    else:
        im = Image.open(path).convert("RGB")
        how = []
        if crop:
            im = im.crop(crop)
            how.append(f"crop {crop}")
        if size and im.size != size:
            im = im.resize(size, Image.Resampling.LANCZOS)
            how.append(f"Lanczos to {size[0]}x{size[1]}")
        if enc == "png":
            im.save(dst, optimize=True)
            how.append("PNG")
        else:
            q = int(enc[4:6])
            prog = enc.endswith("p")
            im.save(dst, quality=q, optimize=True, progressive=prog)
            how.append(f"JPEG q{q}{' progressive' if prog else ''}")
        how = ", ".join(how)
    with Image.open(dst) as im:
        w, h = im.size
    rows.append(
        f"{name}\t{w}\t{h}\t{dst.stat().st_size}\t{pkg}\t{pkg_version.get(pkg, '?')}\t{rel}\t{licence}\t{how}"
    )

(out / "SOURCES.tsv").write_text("\n".join(rows) + "\n")
PY

touch "$TMP/.bench-photos"
echo "$SET_VERSION" >"$TMP/.complete"
rm -rf "$PHOTOS_DIR"
mkdir -p "$(dirname "$PHOTOS_DIR")"
mv "$TMP" "$PHOTOS_DIR"
trap - EXIT
log "made $(find "$PHOTOS_DIR" -maxdepth 1 -type f \( -name '*.jpg' -o -name '*.png' \) | wc -l) photos ($(du -sh "$PHOTOS_DIR" | cut -f1))"
echo "$PHOTOS_DIR"
