"""author-search: is this photo a copy of a known one? For Slipway, offline.

    python author_search.py serve [--port 8080] [--catalogue DIR]   # HTTP CloudEvent service
    python author_search.py job [--catalogue DIR]                   # Job container

Looks the image (`data.image`) up in a reference catalogue by perceptual hash (`imagehash`'s
pHash, 64 bits, compared by Hamming distance) and reads its EXIF `Artist` and `Copyright`.
The catalogue is a directory (`--catalogue`, else `AUTHOR_SEARCH_CATALOGUE`) holding images and
`catalogue.json`: `{"images": [{"file", "author", "first_seen", "title"}]}` — a ConfigMap
mounted as a directory works. `tasks/common/images.py` generates a small one.
Output under `author-search`: `known_author_match`, `nearest_copy_distance`, `matches`, the
nearest copies (author, first-seen date, distance) and the EXIF credit.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import imagehash
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "common"))
from photo_input import ImageInputError, load
from slipway_tool import main

TASK = "author-search"
SOURCE = "slipway.dev/tasks/author-search"
#: Hamming distance (of 64 bits) up to which two pHashes count as the same picture.
DEFAULT_MATCH_DISTANCE = 10
MAX_LISTED = 3
ARTIST, COPYRIGHT = 0x013B, 0x8298


class CatalogueError(Exception):
    """The catalogue cannot be read."""


class Catalogue:
    """The reference images of one directory, hashed once."""

    def __init__(self, directory: Path) -> None:
        index = directory / "catalogue.json"
        try:
            entries = json.loads(index.read_text())["images"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise CatalogueError(f"the catalogue {index} cannot be read: {error}") from error
        self.directory = directory
        self.entries: list[dict[str, Any]] = []
        for entry in entries:
            path = directory / str(entry.get("file", ""))
            try:
                with Image.open(path) as image:
                    digest = imagehash.phash(image.convert("RGB"))
            except (OSError, ValueError) as error:
                raise CatalogueError(f"catalogue image {path} cannot be read: {error}") from error
            self.entries.append({**entry, "hash": digest})

    def nearest(self, digest: imagehash.ImageHash) -> list[dict[str, Any]]:
        """Every entry with its distance to `digest`, nearest first."""
        found = [
            {
                "file": e.get("file"),
                "author": e.get("author"),
                "first_seen": e.get("first_seen"),
                "title": e.get("title"),
                "distance": int(digest - e["hash"]),
            }
            for e in self.entries
        ]
        return sorted(found, key=lambda e: e["distance"])


_lock = threading.Lock()
_catalogues: dict[Path, Catalogue] = {}


def catalogue(directory: Path) -> Catalogue:
    """The catalogue of `directory`, hashed on first use."""
    with _lock:
        if directory not in _catalogues:
            _catalogues[directory] = Catalogue(directory)
        return _catalogues[directory]


def catalogue_dir() -> Path | None:
    value = os.environ.get("AUTHOR_SEARCH_CATALOGUE")
    return Path(value) if value else None


def credit(image: Image.Image) -> dict[str, str | None]:
    """EXIF Artist and Copyright, as text."""
    exif = image.getexif()

    def text(tag: int) -> str | None:
        value = exif.get(tag)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return str(value).replace("\x00", "").strip()[:200] or None if value else None

    return {"artist": text(ARTIST), "copyright": text(COPYRIGHT)}


def decide(data: dict[str, Any]) -> dict[str, Any]:
    """The task: the nearest known copies of the photo and who made them."""
    properties = data.get(TASK) if isinstance(data.get(TASK), dict) else {}
    directory = catalogue_dir()
    if directory is None:
        return {
            "result": "fail",
            "message": "no catalogue configured: set AUTHOR_SEARCH_CATALOGUE or --catalogue",
        }
    try:
        limit = int(properties.get("maxDistance", DEFAULT_MATCH_DISTANCE))
        known = catalogue(directory)
        photo = load(data)
        digest = imagehash.phash(photo.image.convert("RGB"))
    except ImageInputError as error:
        return {"result": "fail", "message": str(error)}
    except CatalogueError as error:
        return {"result": "fail", "message": str(error)}
    except (TypeError, ValueError) as error:
        return {"result": "fail", "message": f"author-search.maxDistance: {error}"}
    except OSError as error:
        return {"result": "fail", "message": f"the image could not be decoded: {error}"}
    ranked = known.nearest(digest)
    matches = [e for e in ranked if e["distance"] <= limit]
    found: dict[str, Any] = {
        "known_author_match": bool(matches),
        "nearest_copy_distance": ranked[0]["distance"] if ranked else None,
        "matches": len(matches),
        "match_distance": limit,
        "phash": str(digest),
        "nearest": ranked[:MAX_LISTED],
        **credit(photo.image),
    }
    if matches:
        first = min(matches, key=lambda e: str(e.get("first_seen") or "9999"))
        found["author"], found["first_seen"] = first["author"], first["first_seen"]
        message = (
            f"a known photo: {first.get('title') or first['file']} by {first['author']}, "
            f"first seen {first['first_seen']} (distance {first['distance']} of 64 bits)"
        )
    elif ranked:
        message = f"no known copy among {len(ranked)} catalogued photos "
        message += f"(nearest at {ranked[0]['distance']} of 64 bits, limit {limit})"
    else:
        message = "the catalogue is empty: nothing to compare with"
    if found["artist"] or found["copyright"]:
        message += f"; EXIF credit: {found['artist'] or found['copyright']}"
    return {"result": "pass", "message": message, TASK: found}


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--catalogue" in args:
        at = args.index("--catalogue")
        os.environ["AUTHOR_SEARCH_CATALOGUE"] = args[at + 1]
        del args[at : at + 2]
    sys.exit(
        main(
            TASK, SOURCE, decide, args, working="searching the catalogue of known photos for copies"
        )
    )
