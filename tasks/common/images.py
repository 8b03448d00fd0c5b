"""Photos and a reference catalogue for the photo tools' tests and demo, generated here.

    python tasks/common/images.py OUTDIR     # writes the photos and OUTDIR/catalogue/

Nothing is downloaded: every picture is drawn with Pillow from a seed (a sky, a sea, a few
boats and some sensor-like noise), so the same seed gives the same bytes. The cases:

- `unedited_photo()`: a camera original with EXIF (make, model, capture time equal to the
  modify time, no editing software) and GPS at Plymouth harbour (50.3755, -4.1427);
- `edited_photo()`: a composite (a region pasted from another photo, recompressed) whose EXIF
  says only `Software: Adobe Photoshop 25.0 (Windows)` and a modify time: no camera, no GPS;
- `stripped_photo()`: the same composite with no EXIF at all;
- `write_catalogue(dir)`: a few "known" photos and `catalogue.json` (author, first-seen date);
- `catalogue_copy()`: a near-copy of the first catalogue photo (scaled, brighter, recompressed)
  that kept the original's camera EXIF with its `Artist` and `Copyright`, and no GPS.
"""

from __future__ import annotations

import io
import json
import random
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

PLYMOUTH = (50.3755, -4.1427)
SIZE = (640, 480)
#: EXIF tag numbers used here.
MAKE, MODEL, SOFTWARE, DATETIME, ARTIST, COPYRIGHT = 0x010F, 0x0110, 0x0131, 0x0132, 0x013B, 0x8298
EXIF_IFD, GPS_IFD, DATETIME_ORIGINAL = 0x8769, 0x8825, 0x9003

CATALOGUE = [
    {"seed": 101, "author": "Jane Doe", "first_seen": "2019-06-14", "title": "Harbour at dawn"},
    {"seed": 202, "author": "Ravi Patel", "first_seen": "2021-03-02", "title": "Fishing fleet"},
    {"seed": 303, "author": "Ana Lima", "first_seen": "2022-11-20", "title": "Breakwater storm"},
    {"seed": 404, "author": "Tom Berg", "first_seen": "2023-08-09", "title": "Ferry crossing"},
]


def scene(seed: int, size: tuple[int, int] = SIZE) -> Image.Image:
    """A harbour-like picture drawn from `seed`: different seeds give different layouts."""
    rng = random.Random(seed)
    width, height = size
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    horizon = int(height * rng.uniform(0.3, 0.7))
    sky = (rng.randint(90, 200), rng.randint(120, 210), rng.randint(180, 255))
    sea = (rng.randint(10, 60), rng.randint(50, 110), rng.randint(90, 160))
    for y in range(height):
        base, top = (sky, horizon) if y < horizon else (sea, height)
        shade = 1 - 0.4 * (y / top if y < horizon else (y - horizon) / (height - horizon))
        draw.line([(0, y), (width, y)], fill=tuple(int(c * shade) for c in base))
    for _ in range(rng.randint(4, 9)):  # boats, buildings, rocks
        x, y = rng.randint(0, width - 60), rng.randint(horizon - 80, height - 40)
        w, h = rng.randint(30, 200), rng.randint(15, 120)
        colour = tuple(rng.randint(0, 255) for _ in range(3))
        if rng.random() < 0.5:
            draw.rectangle([x, y, x + w, y + h], fill=colour)
        else:
            draw.ellipse([x, y, x + w, y + h], fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(1.2))
    noise = Image.frombytes("L", size, rng.randbytes(width * height)).convert("RGB")
    return Image.blend(image, noise, 0.06)


def _dms(value: float) -> tuple[float, float, float]:
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    return (float(degrees), float(minutes), round((value - degrees - minutes / 60) * 3600, 4))


def exif(
    *,
    make: str | None = None,
    model: str | None = None,
    taken: datetime | None = None,
    modified: datetime | None = None,
    gps: tuple[float, float] | None = None,
    software: str | None = None,
    artist: str | None = None,
    copyright: str | None = None,
) -> Image.Exif:
    """An EXIF block with the given tags (and only those)."""
    block = Image.Exif()
    for tag, value in ((MAKE, make), (MODEL, model), (SOFTWARE, software), (ARTIST, artist)):
        if value is not None:
            block[tag] = value
    if copyright is not None:
        block[COPYRIGHT] = copyright
    if modified is not None:
        block[DATETIME] = modified.strftime("%Y:%m:%d %H:%M:%S")
    if taken is not None:
        block.get_ifd(EXIF_IFD)[DATETIME_ORIGINAL] = taken.strftime("%Y:%m:%d %H:%M:%S")
    if gps is not None:
        lat, lon = gps
        block.get_ifd(GPS_IFD).update(
            {
                0: b"\x02\x03\x00\x00",
                1: "N" if lat >= 0 else "S",
                2: _dms(lat),
                3: "E" if lon >= 0 else "W",
                4: _dms(lon),
            }
        )
    return block


def jpeg(image: Image.Image, quality: int = 92, block: Image.Exif | None = None) -> bytes:
    """`image` as JPEG bytes, with the EXIF block if any."""
    out = io.BytesIO()
    extra: dict[str, Any] = {"exif": block.tobytes()} if block is not None else {}
    image.save(out, "JPEG", quality=quality, **extra)
    return out.getvalue()


def unedited_photo(gps: tuple[float, float] = PLYMOUTH) -> bytes:
    """A camera original with EXIF and GPS (Plymouth harbour by default)."""
    taken = datetime(2026, 11, 20, 9, 41, 7)
    block = exif(make="FUJIFILM", model="X100V", taken=taken, modified=taken, gps=gps)
    return jpeg(scene(7), quality=92, block=block)


def _composite() -> Image.Image:
    base = scene(8)
    pasted = Image.open(io.BytesIO(jpeg(scene(9), quality=60))).crop((100, 100, 340, 300))
    pasted = ImageEnhance.Brightness(pasted).enhance(1.3)
    base.paste(pasted, (300, 180))
    return base


def edited_photo() -> bytes:
    """A composite saved by Photoshop: EXIF with only Software and a modify time."""
    block = exif(software="Adobe Photoshop 25.0 (Windows)", modified=datetime(2026, 11, 21, 22, 5))
    return jpeg(_composite(), quality=85, block=block)


def stripped_photo() -> bytes:
    """The same composite with every piece of metadata removed."""
    return jpeg(_composite(), quality=85)


def catalogue_photo(index: int) -> Image.Image:
    return scene(int(CATALOGUE[index]["seed"]))


def write_catalogue(directory: Path) -> Path:
    """Write the reference catalogue (JPEGs and catalogue.json) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    for index, entry in enumerate(CATALOGUE):
        name = f"known-{index + 1}.jpg"
        (directory / name).write_bytes(jpeg(catalogue_photo(index), quality=90))
        entries.append({"file": name, **{k: v for k, v in entry.items() if k != "seed"}})
    (directory / "catalogue.json").write_text(json.dumps({"images": entries}, indent=2) + "\n")
    return directory


def catalogue_copy() -> bytes:
    """A near-copy of the first catalogue photo, with the original's camera EXIF and author."""
    original = catalogue_photo(0)
    copy = original.resize((576, 432), Image.Resampling.LANCZOS)
    copy = ImageEnhance.Brightness(copy).enhance(1.08)
    taken = datetime(2019, 6, 14, 5, 12, 40)
    block = exif(
        make="Canon",
        model="EOS R6",
        taken=taken,
        modified=taken,
        artist="Jane Doe",
        copyright="(c) 2019 Jane Doe, all rights reserved",
    )
    return jpeg(copy, quality=88, block=block)


def write_all(directory: Path) -> dict[str, Path]:
    """Every photo and the catalogue, written into `directory`; returns the photos' paths."""
    directory.mkdir(parents=True, exist_ok=True)
    photos = {
        "unedited.jpg": unedited_photo(),
        "edited.jpg": edited_photo(),
        "stripped.jpg": stripped_photo(),
        "catalogue-copy.jpg": catalogue_copy(),
    }
    paths = {}
    for name, data in photos.items():
        paths[name] = directory / name
        paths[name].write_bytes(data)
    write_catalogue(directory / "catalogue")
    return paths


if __name__ == "__main__":
    for path in write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "photos")).values():
        print(path)
