"""How the photo tools get their image: `data.image` from the `.triggered` event.

`image` is a URL (`"https://…"` or `{"url": "https://…"}`) or inline bytes
(`{"data": "<base64>"}`). A photo uploaded on Slipway's web page arrives as
`{"url": "<gateway>/v1/namespaces/…/sequenceruns/<run>/uploads/<sha256>", "token": "…"}`: the
token (valid for that run only) is sent as `Authorization: Bearer`, never on a redirect.
URLs are fetched with a timeout and a size limit, without proxies, at most 3 redirects; a
URL whose host is (or resolves to, or redirects to) a private, loopback, link-local or
otherwise non-public address is refused unless the tool's environment sets
`TOOL_ALLOW_PRIVATE_URLS=true` (the person running the tool decides, never the caller). The
address is checked on the connected socket itself, so a DNS answer that changes between a
check and the connection cannot slip past.

Environment: `TOOL_MAX_IMAGE_BYTES` (default 10 MiB), `TOOL_MAX_PIXELS`
(default 50 million), `TOOL_FETCH_TIMEOUT` (seconds, default 10).
"""

from __future__ import annotations

import base64
import binascii
import http.client
import io
import ipaddress
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from PIL import Image, UnidentifiedImageError

EXAMPLE = '{"image": {"url": "https://example.org/photo.jpg"}} or {"image": {"data": "<base64>"}}'


class ImageInputError(Exception):
    """The event carries no usable image; the message says why, in plain words."""


@dataclass
class Photo:
    """An image as received: its bytes, the opened image, and where it came from."""

    raw: bytes
    image: Image.Image
    origin: str


def max_bytes() -> int:
    return int(os.environ.get("TOOL_MAX_IMAGE_BYTES", str(10 * 1024 * 1024)))


def allow_private() -> bool:
    return os.environ.get("TOOL_ALLOW_PRIVATE_URLS", "").lower() in ("1", "true", "yes")


def _check_peer(sock: Any, host: str) -> None:
    address = ipaddress.ip_address(sock.getpeername()[0].split("%")[0])
    if not address.is_global and not allow_private():
        sock.close()
        raise ImageInputError(
            f"{host} is a private or local address ({address}): this tool only fetches public "
            "addresses (its operator can allow others with TOOL_ALLOW_PRIVATE_URLS)"
        )


class _CheckedHTTP(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _check_peer(self.sock, self.host)


class _CheckedHTTPS(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _check_peer(self.sock, self.host)


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_CheckedHTTP, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_CheckedHTTPS, req, context=self._context)


class _Redirects(urllib.request.HTTPRedirectHandler):
    max_redirections = 3

    def redirect_request(self, req: Any, fp: Any, code: Any, msg: Any, headers: Any, newurl: str):  # type: ignore[no-untyped-def]
        if urlsplit(newurl).scheme not in ("http", "https"):
            raise ImageInputError(f"the image URL redirects to {newurl!r}, which is not http(s)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener() -> urllib.request.OpenerDirector:
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler({}),
        _HTTPHandler(),
        _HTTPSHandler(),
        _Redirects(),
        urllib.request.HTTPErrorProcessor(),
        urllib.request.HTTPDefaultErrorHandler(),
    ):
        opener.add_handler(handler)
    return opener


def fetch(url: str, token: str | None = None) -> bytes:
    """The bytes at an http(s) URL, within the size limit; `token` goes in an Authorization
    header of this request only (a redirect does not carry it)."""
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise ImageInputError(f"{url!r} is not an http or https URL")
    limit = max_bytes()
    timeout = float(os.environ.get("TOOL_FETCH_TIMEOUT", "10"))
    request = urllib.request.Request(url, headers={"User-Agent": "slipway-photo-tools/0.1"})
    if token:
        request.add_unredirected_header("Authorization", f"Bearer {token}")
    try:
        with _opener().open(request, timeout=timeout) as response:
            body: bytes = response.read(limit + 1)
    except ImageInputError:
        raise
    except urllib.error.HTTPError as error:
        raise ImageInputError(f"fetching {url} answered HTTP {error.code}") from error
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", error)
        if isinstance(reason, ImageInputError):
            raise reason from error
        raise ImageInputError(f"the image at {url} could not be fetched: {reason}") from error
    if len(body) > limit:
        raise ImageInputError(f"the image at {url} is larger than {limit} bytes")
    return body


def decode(text: str) -> bytes:
    """Inline base64 (a `data:` URL prefix is allowed), within the size limit."""
    if text.startswith("data:"):
        text = text.partition(",")[2]
    limit = max_bytes()
    if len(text) > (limit + 2) // 3 * 4 + 4:
        raise ImageInputError(f"image.data is larger than {limit} bytes")
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError) as error:
        raise ImageInputError(f"image.data is not base64: {error}") from error


def open_image(raw: bytes, origin: str) -> Image.Image:
    """Open (without decoding every pixel yet) and sanity-check an image."""
    if not raw:
        raise ImageInputError(f"the image from {origin} is empty")
    try:
        image = Image.open(io.BytesIO(raw))
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ImageInputError(
            f"the data from {origin} is not an image this tool can read (JPEG, PNG, TIFF, …)"
        ) from error
    limit = int(os.environ.get("TOOL_MAX_PIXELS", "50000000"))
    if image.width * image.height > limit:
        raise ImageInputError(
            f"the image from {origin} has {image.width}x{image.height} pixels, over {limit}"
        )
    return image


def load(data: dict[str, Any]) -> Photo:
    """The image the event's `data.image` names."""
    spec = data.get("image")
    if isinstance(spec, str):
        spec = {"url": spec}
    if not isinstance(spec, dict) or not (spec.get("url") or spec.get("data")):
        raise ImageInputError(f"no image in the request: send {EXAMPLE}")
    if spec.get("data"):
        if not isinstance(spec["data"], str):
            raise ImageInputError("image.data must be base64 text")
        raw, origin = decode(spec["data"]), "image.data"
    else:
        if not isinstance(spec["url"], str):
            raise ImageInputError("image.url must be text")
        token = spec.get("token")
        if token is not None and not isinstance(token, str):
            raise ImageInputError("image.token must be text")
        raw, origin = fetch(spec["url"], token), spec["url"]
    return Photo(raw=raw, image=open_image(raw, origin), origin=origin)
