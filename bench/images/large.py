"""Writes the large-but-legal images of the memory drill into a directory: a 16000x2500
PNG of black pixels (40 MP, small on the wire) and two 36 MP JPEG gradients.
Usage: large.py DIR (run with the Pillow that photos.sh installs)."""
import os
import sys

from PIL import Image

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
Image.new("RGB", (16000, 2500), (0, 0, 0)).save(os.path.join(out, "black-40mp.png"))
for i, (w, h) in enumerate([(7350, 4900), (7360, 4912)]):
    across = Image.linear_gradient("L").resize((w, h))
    down = across.rotate(90).resize((w, h))
    flipped = across.transpose(Image.FLIP_LEFT_RIGHT)
    Image.merge("RGB", (across, down, flipped)).save(os.path.join(out, f"gradient-36mp-{i}.jpg"), quality=90)
