"""extract-metadata: an image's EXIF/XMP and forensic metrics, for Slipway (Pillow only).

    python extract_metadata.py serve [--port 8080]   # HTTP CloudEvent service
    python extract_metadata.py job                   # Job container (SLIPWAY_EVENT)

Input `data.image` (a URL or `{"data": base64}`, see tasks/common/photo_input.py). Output under
`extract-metadata`: the metadata found and the metrics `exif_present`, `gps_present`,
`editing_software_detected`, `capture_modify_gap_seconds` and `ela_score` (README.md says how
each is computed and what it cannot see). Result `pass` whenever the image could be read (the
verdict on authenticity is the evaluation's), `fail` for no image or not an image.
"""

from __future__ import annotations

import io
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops, ImageStat

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "common"))
from photo_input import ImageInputError, load
from slipway_tool import main

TASK = "extract-metadata"
SOURCE = "slipway.dev/tasks/extract-metadata"
#: Software tags of editors (lower case, matched as words anywhere in the tag).
EDITORS = (
    "photoshop",
    "lightroom",
    "gimp",
    "snapseed",
    "affinity",
    "pixelmator",
    "paint.net",
    "picsart",
    "facetune",
    "vsco",
    "capture one",
    "darktable",
    "rawtherapee",
    "luminar",
    "photoscape",
    "canva",
    "fotor",
    "photopea",
    "krita",
    "corel",
    "acdsee",
    "inkscape",
    "imagemagick",
    "photos 1.",  # Apple Photos edits
)
#: ELA: re-save at this JPEG quality and compare.
ELA_QUALITY = 90
#: EXIF tags, by number.
TAGS = {
    "make": 0x010F,
    "model": 0x0110,
    "software": 0x0131,
    "modified": 0x0132,
    "artist": 0x013B,
    "copyright": 0x8298,
}
EXIF_IFD, GPS_IFD = 0x8769, 0x8825
DATETIME_ORIGINAL, LENS_MODEL = 0x9003, 0xA434
XMP_FIELDS = ("CreatorTool", "creator", "rights", "DateCreated", "ModifyDate", "History")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).replace("\x00", "").strip()
    return text[:200] or None


def _time(value: Any) -> datetime | None:
    text = _text(value)
    if not text:
        return None
    try:
        return datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None


def _degrees(dms: Any, ref: Any) -> float | None:
    try:
        degrees, minutes, seconds = (float(x) for x in dms)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    value = degrees + minutes / 60 + seconds / 3600
    return -value if _text(ref) in ("S", "W") else value


def gps_position(gps: dict[int, Any]) -> dict[str, float] | None:
    """Latitude and longitude in decimal degrees from a GPS IFD, if both are there and sane."""
    lat, lon = _degrees(gps.get(2), gps.get(1)), _degrees(gps.get(4), gps.get(3))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    position = {"lat": round(lat, 6), "lon": round(lon, 6)}
    try:
        altitude = float(gps[6])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return position
    position["altitude"] = round(-altitude if gps.get(5) in (1, b"\x01") else altitude, 1)
    return position


def xmp_summary(image: Image.Image) -> dict[str, str]:
    """A few telling XMP fields (editor, creator, rights, dates), as text."""
    raw = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")
    if not raw:
        return {}
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    found = {}
    for field in XMP_FIELDS:
        match = re.search(rf"{field}\s*=\s*\"([^\"]*)\"|<[\w]*:?{field}>(.*?)</", text, re.S)
        if match:
            value = re.sub(r"<[^>]+>", " ", match.group(1) or match.group(2) or "")
            found[field] = " ".join(value.split())[:200]
    return found or {"present": "yes"}


def editing_software(*tags: str | None) -> str | None:
    """The first tag that names a known editor, if any."""
    for tag in tags:
        if tag and any(editor in tag.lower() for editor in EDITORS):
            return tag
    return None


def ela_score(image: Image.Image) -> float:
    """Error-level analysis: the mean absolute difference between the image and itself
    re-saved as JPEG at quality 90, over every pixel and RGB channel, in percent of full
    scale (0 = identical, 100 = every value off by 255)."""
    rgb = image.convert("RGB")
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=ELA_QUALITY)
    resaved = Image.open(io.BytesIO(out.getvalue())).convert("RGB")
    difference = ImageChops.difference(rgb, resaved)
    mean = sum(ImageStat.Stat(difference).mean) / 3
    return round(mean / 255 * 100, 3)


def analyse(image: Image.Image) -> dict[str, Any]:
    """Every field and metric of `extract-metadata` for one opened image."""
    exif = image.getexif()
    ifd = exif.get_ifd(EXIF_IFD)
    gps = exif.get_ifd(GPS_IFD)
    fields = {name: _text(exif.get(tag)) for name, tag in TAGS.items()}
    captured, modified = _time(ifd.get(DATETIME_ORIGINAL)), _time(exif.get(TAGS["modified"]))
    xmp = xmp_summary(image)
    position = gps_position(gps)
    editor = editing_software(fields["software"], xmp.get("CreatorTool"), xmp.get("History"))
    gap = (modified - captured).total_seconds() if captured and modified else None
    image.load()
    return {
        "exif_present": len(exif) > 0,
        "gps_present": position is not None,
        "editing_software_detected": editor is not None,
        "capture_modify_gap_seconds": gap,
        "ela_score": ela_score(image),
        "camera": {"make": fields["make"], "model": fields["model"]},
        "lens": _text(ifd.get(LENS_MODEL)),
        "software": fields["software"],
        "editor": editor,
        "captured_at": captured.isoformat() if captured else None,
        "modified_at": modified.isoformat() if modified else None,
        "artist": fields["artist"],
        "copyright": fields["copyright"],
        "gps": position,
        "width": image.width,
        "height": image.height,
        "format": image.format,
        "xmp_present": bool(xmp),
        "xmp": xmp,
    }


def describe(found: dict[str, Any]) -> str:
    """One sentence on what was found."""
    parts = [f"{found['format'] or 'image'} {found['width']}x{found['height']}"]
    if not found["exif_present"]:
        parts.append("no EXIF metadata (camera, time and place unknown)")
    else:
        camera = " ".join(x for x in found["camera"].values() if x) or "no camera named"
        parts.append(camera)
        if found["captured_at"]:
            parts.append(f"taken {found['captured_at']}")
        parts.append(
            f"GPS {found['gps']['lat']}, {found['gps']['lon']}" if found["gps"] else "no GPS"
        )
    if found["editor"]:
        parts.append(f"edited with {found['editor']}")
    parts.append(f"ELA {found['ela_score']}")
    return "; ".join(parts)


def decide(data: dict[str, Any]) -> dict[str, Any]:
    """The task: read the image named by `data.image` and report what it carries."""
    try:
        photo = load(data)
        found = analyse(photo.image)
    except ImageInputError as error:
        return {"result": "fail", "message": str(error)}
    except (OSError, ValueError, SyntaxError) as error:
        return {"result": "fail", "message": f"the image could not be decoded: {error}"}
    return {"result": "pass", "message": describe(found), TASK: found}


if __name__ == "__main__":
    sys.exit(
        main(
            TASK,
            SOURCE,
            decide,
            working="reading the photo's metadata and looking for signs of editing",
        )
    )
