"""Files people upload for a run (a photo from their phone), and how tools fetch them.

    POST /v1/namespaces/{ns}/uploads?capability=<shipyard>/<stage>/<sequence>&input=<name>
         the file as the body, its media type as Content-Type; who may: `create` sequenceruns
         -> 201 {upload: <sha256>, size, contentType}
    GET  /v1/namespaces/{ns}/sequenceruns/{run}/uploads/{sha256}
         Authorization: Bearer <the token in the run's data>  -> the file

A stored file is named by the sha256 of its bytes (the same photo twice is stored once) in
the upload folder (`SLIPWAY_UPLOAD_DIR`; a PersistentVolume in a cluster). The size is
limited (`SLIPWAY_UPLOAD_MAX_BYTES`) and the media type must fit the input's
`contentMediaType`, both as declared and as the first bytes show for images.

A trigger whose data names an upload (`{"upload": "<sha256>"}` as the value of a file input)
gets, in the run's data, `{url, token, sha256, contentType, size}`: the URL above and a token
made for that run; the run's data is the only place it is kept, so it is valid for that run
only and ends with it. A sweep removes files that no run refers to (any more) once they are
older than a grace time (`SLIPWAY_UPLOAD_GRACE_SECONDS`): uploads of deleted runs go, and so
do uploads for which no run was started.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from slipway.api.inputs import Input
from slipway.api.shipyard import Sequence
from slipway.constants import SEQUENCERUN_PLURAL
from slipway.kube.access import list_everywhere
from slipway.kube.client import Kube, Ref

log = logging.getLogger(__name__)

SHA256 = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 64 * 1024

#: First bytes of the image types people upload, to check a declared `image/*` type.
_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"BM", "image/bmp"),
)


class UploadError(Exception):
    """An upload or a reference to one that cannot be used: status and message."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def media_type_fits(wanted: str, given: str) -> bool:
    """Does `given` (`image/jpeg`) fit `wanted` (`image/*`, `*/*`, `image/jpeg`)?"""
    w_type, _, w_sub = wanted.lower().partition("/")
    g_type, _, g_sub = given.lower().partition("/")
    return (w_type in ("*", g_type)) and (w_sub in ("*", g_sub)) and bool(g_type and g_sub)


def sniff(head: bytes) -> str | None:
    """The image type the first bytes show, or None when they show none of those known."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "image/avif" if head[8:12] == b"avif" else "image/heic"
    return None


@dataclass(frozen=True)
class Stored:
    sha256: str
    size: int
    content_type: str


class UploadStore:
    """Files on a folder, named by their sha256, each with a small JSON of its media type."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def _path(self, sha: str) -> Path:
        if not SHA256.fullmatch(sha):
            raise UploadError(404, "not_found", f"{sha!r} names no upload")
        return self.root / "sha256" / sha

    async def save(self, chunks: AsyncIterator[bytes], content_type: str, wanted: str) -> Stored:
        """Store the bytes (within the size limit) if they fit `wanted`; the stored file."""
        if not media_type_fits(wanted, content_type):
            raise UploadError(
                415, "unsupported_media_type", f"this input takes {wanted}, not {content_type}"
            )
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        (self.root / "sha256").mkdir(parents=True, exist_ok=True)
        temp = self.root / "tmp" / secrets.token_hex(8)
        digest, size, head = hashlib.sha256(), 0, b""
        try:
            with temp.open("wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise UploadError(
                            413, "too_large", f"the file is larger than {self.max_bytes} bytes"
                        )
                    if len(head) < 16:
                        head += chunk[: 16 - len(head)]
                    digest.update(chunk)
                    out.write(chunk)
            if size == 0:
                raise UploadError(400, "empty", "the file is empty")
            seen = sniff(head)
            if wanted.lower().startswith("image/") and (
                seen is None or not media_type_fits(wanted, seen)
            ):
                raise UploadError(
                    415,
                    "unsupported_media_type",
                    f"the file is not an image of type {wanted} (JPEG, PNG, GIF, WebP, TIFF)",
                )
            kind = seen or content_type.lower()
            sha = digest.hexdigest()
            final = self._path(sha)
            os.replace(temp, final)
            meta = {"contentType": kind, "size": size, "stored": time.time()}
            final.with_suffix(".json").write_text(json.dumps(meta))
            return Stored(sha, size, kind)
        finally:
            temp.unlink(missing_ok=True)

    def find(self, sha: str) -> Stored | None:
        path = self._path(sha)
        try:
            meta = json.loads(path.with_suffix(".json").read_text())
        except (OSError, ValueError):
            return None
        if not path.exists():
            return None
        return Stored(sha, int(meta["size"]), str(meta["contentType"]))

    def file(self, sha: str) -> Path:
        return self._path(sha)

    def ages(self) -> dict[str, float]:
        """Every stored upload and how many seconds ago it was stored (or touched)."""
        folder = self.root / "sha256"
        now = time.time()
        found = {}
        for path in folder.glob("*") if folder.exists() else []:
            if SHA256.fullmatch(path.name):
                with contextlib.suppress(OSError):
                    found[path.name] = now - path.stat().st_mtime
        return found

    def touch(self, sha: str) -> None:
        """Restart the grace time (the same photo uploaded again)."""
        with contextlib.suppress(OSError):
            os.utime(self._path(sha))

    def remove(self, sha: str) -> None:
        path = self._path(sha)
        path.unlink(missing_ok=True)
        path.with_suffix(".json").unlink(missing_ok=True)


def referenced(data: Any) -> set[str]:
    """The sha256 of every upload a run's data refers to."""
    found: set[str] = set()
    if isinstance(data, dict):
        sha = data.get("sha256")
        if isinstance(sha, str) and "token" in data and "url" in data:
            found.add(sha)
        for value in data.values():
            found |= referenced(value)
    elif isinstance(data, list):
        for value in data:
            found |= referenced(value)
    return found


def attach_uploads(
    store: UploadStore | None,
    base_url: str,
    namespace: str,
    run: str,
    sequence: Sequence,
    data: dict[str, Any],
) -> dict[str, Any]:
    """The trigger's data with each `{"upload": sha}` of a file input replaced by what the
    tools get: the run-scoped URL, its token, and the file's facts. UploadError when one
    names no stored upload or one of another media type."""
    files = sequence.inputs.files() if sequence.inputs else {}
    wanted = {
        k: v for k, v in files.items() if isinstance(data.get(k), dict) and "upload" in data[k]
    }
    if not wanted:
        return data
    if store is None:
        raise UploadError(422, "uploads_disabled", "this gateway takes no uploads")
    token = secrets.token_urlsafe(24)
    out = dict(data)
    for name, spec in wanted.items():
        out[name] = _attached(store, base_url, namespace, run, name, spec, data[name], token)
    return out


def _attached(
    store: UploadStore,
    base_url: str,
    namespace: str,
    run: str,
    name: str,
    spec: Input,
    value: dict[str, Any],
    token: str,
) -> dict[str, Any]:
    sha = value.get("upload")
    if not isinstance(sha, str) or not SHA256.fullmatch(sha):
        raise UploadError(422, "invalid_data", f"{name}: upload must be a sha256 from /uploads")
    stored = store.find(sha)
    if stored is None:
        raise UploadError(422, "invalid_data", f"{name}: no such upload (upload the file again)")
    if spec.content_media_type and not media_type_fits(
        spec.content_media_type, stored.content_type
    ):
        raise UploadError(
            422,
            "invalid_data",
            f"{name}: takes {spec.content_media_type}, not {stored.content_type}",
        )
    store.touch(sha)
    attached = {
        "url": f"{base_url.rstrip('/')}/v1/namespaces/{namespace}/sequenceruns/{run}/uploads/{sha}",
        "token": token,
        "sha256": sha,
        "contentType": stored.content_type,
        "size": stored.size,
    }
    filename = value.get("name")
    if isinstance(filename, str) and filename:
        attached["name"] = filename[:200]
    return attached


def token_matches(data: Any, sha: str, given: str) -> bool:
    """Does the run's data hold upload `sha` with token `given`?"""
    if isinstance(data, dict):
        token = data.get("token")
        if (
            data.get("sha256") == sha
            and isinstance(token, str)
            and "url" in data
            and hmac.compare_digest(token.encode(), given.encode())
        ):
            return True
        return any(token_matches(v, sha, given) for v in data.values())
    if isinstance(data, list):
        return any(token_matches(v, sha, given) for v in data)
    return False


async def serve_upload(
    kube: Kube, store: UploadStore, namespace: str, run: str, sha: str, token: str
) -> web.StreamResponse:
    """The file, to a caller holding the run's upload token."""
    body = await kube.get(Ref(SEQUENCERUN_PLURAL, namespace, run))
    data = ((body or {}).get("spec") or {}).get("data") or {}
    if body is None or not token_matches(data, sha, token):
        raise UploadError(
            403, "forbidden", f"the token is not the upload token of {namespace}/{run}"
        )
    stored = store.find(sha)
    if stored is None:
        raise UploadError(404, "not_found", f"upload {sha} is no longer stored")
    return web.FileResponse(
        store.file(sha),
        headers={
            "Content-Type": stored.content_type,
            "Content-Disposition": "attachment",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=300",
        },
    )


async def sweep_once(kube: Kube, store: UploadStore, namespace: str | None, grace: float) -> int:
    """Remove uploads older than `grace` seconds that no run refers to; how many went."""
    ages = store.ages()
    old = {sha for sha, age in ages.items() if age >= grace}
    if not old:
        return 0
    runs = await list_everywhere(kube, SEQUENCERUN_PLURAL, namespace)
    used: set[str] = set()
    for run in runs:
        used |= referenced((run.get("spec") or {}).get("data"))
    removed = 0
    for sha in old - used:
        store.remove(sha)
        removed += 1
    if removed:
        log.info("removed %d upload(s) no run refers to", removed)
    return removed


async def sweeper(
    kube: Kube, store: UploadStore, namespace: str | None, grace: float, every: float
) -> None:
    """`sweep_once` every `every` seconds until cancelled; errors are logged and retried."""
    while True:
        await asyncio.sleep(every)
        try:
            await sweep_once(kube, store, namespace, grace)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the upload sweep failed; trying again in %.0f s", every)
