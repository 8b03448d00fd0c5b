"""The photo tools fetch an uploaded photo with the run's upload token: sent as a bearer
header to the URL it came with, never on a redirect, and only where private addresses are
allowed (the gateway on loopback here)."""

from __future__ import annotations

import http.server
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import pytest

from tests.photo_tools import images, module


def photo_input() -> ModuleType:
    """tasks/common/photo_input.py, as the tools import it."""
    return sys.modules[module("extract-metadata").load.__module__]


@contextmanager
def gateway(photo: bytes) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """/upload answers the photo to `Bearer secret` only; /moved redirects to /elsewhere,
    which records the headers it got."""
    seen: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", "/elsewhere")
                self.end_headers()
                return
            seen.append({k.lower(): v for k, v in self.headers.items()})
            if self.path == "/upload" and self.headers.get("Authorization") == "Bearer secret":
                self.send_response(200)
                self.send_header("Content-Length", str(len(photo)))
                self.end_headers()
                self.wfile.write(photo)
                return
            self.send_error(403)

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_the_upload_token_is_sent_to_the_url_only(monkeypatch: pytest.MonkeyPatch) -> None:
    module = photo_input()
    photo = images().unedited_photo()
    monkeypatch.setenv("TOOL_ALLOW_PRIVATE_URLS", "true")
    with gateway(photo) as (base, seen):
        loaded = module.load({"image": {"url": f"{base}/upload", "token": "secret"}})
        assert loaded.raw == photo
        with pytest.raises(module.ImageInputError, match="HTTP 403"):
            module.load({"image": {"url": f"{base}/upload"}})
        with pytest.raises(module.ImageInputError, match="HTTP 403"):
            module.load({"image": {"url": f"{base}/moved", "token": "secret"}})
        assert "authorization" not in seen[-1]  # not carried over the redirect
        with pytest.raises(module.ImageInputError, match=r"image\.token must be text"):
            module.load({"image": {"url": f"{base}/upload", "token": 7}})


def test_a_private_upload_url_is_refused_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    module = photo_input()
    monkeypatch.delenv("TOOL_ALLOW_PRIVATE_URLS", raising=False)
    with gateway(b"x") as (base, seen), pytest.raises(module.ImageInputError, match="private"):
        module.load({"image": {"url": f"{base}/upload", "token": "secret"}})
    assert seen == []
