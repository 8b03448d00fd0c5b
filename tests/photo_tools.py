"""Helpers for the photo tools' tests: load a tool's module, serve it over real HTTP, serve
generated images from a loopback web server, run its Job entry point as a subprocess."""

from __future__ import annotations

import asyncio
import base64
import functools
import http.server
import importlib.util
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
TASKS = ROOT / "tasks"
SCRIPTS = {
    "extract-metadata": TASKS / "extract-metadata" / "extract_metadata.py",
    "geolookup": TASKS / "geolookup" / "geolookup.py",
    "author-search": TASKS / "author-search" / "author_search.py",
}


@functools.cache
def module(task: str) -> ModuleType:
    """The tool's script, imported as a module (once)."""
    name = "tool_" + task.replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, SCRIPTS[task])
    assert spec is not None
    assert spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


@functools.cache
def images() -> ModuleType:
    """tasks/common/images.py, the generator of the test photos."""
    spec = importlib.util.spec_from_file_location("photo_images", TASKS / "common" / "images.py")
    assert spec is not None
    assert spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def inline(data: bytes) -> dict[str, Any]:
    """`data.image` carrying the bytes inline."""
    return {"image": {"data": base64.b64encode(data).decode()}}


def triggered(task: str, data: dict[str, Any]) -> dict[str, Any]:
    """A `<task>.triggered` CloudEvent as Slipway sends it."""
    return {
        "specversion": "1.0",
        "id": f"ns/run-0-{task}/p/1",
        "source": "slipway.dev/operator",
        "type": f"{task}.triggered",
        "slipwaycontext": "ctx-1",
        "datacontenttype": "application/json",
        "data": data,
    }


class ToolServer:
    """A tool's aiohttp application on a free loopback port, on its own thread and loop."""

    def __init__(self, task: str) -> None:
        tool = module(task)
        from slipway_tool import make_app  # put on sys.path by the tool's module

        self.app = make_app(task, tool.SOURCE, tool.decide)
        self.url = ""
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        runner = web.AppRunner(self.app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def __enter__(self) -> ToolServer:
        self._thread.start()
        assert self._ready.wait(10), "tool server did not start"
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._loop.close()


@contextmanager
def image_server(files: dict[str, bytes]) -> Iterator[str]:
    """A loopback web server answering GET /<name> with `files[name]`; yields its base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path.lstrip("/"))
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def run_job(
    task: str, event: dict[str, Any] | None, tmp: Path, **env: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any] | None]:
    """Run the tool's Job entry point as a subprocess; returns it and the termination message."""
    log = tmp / f"{task}-termination-log"
    environ = {**os.environ, "SLIPWAY_TERMINATION_LOG": str(log), **env}
    environ.pop("SLIPWAY_EVENT", None)
    if event is not None:
        environ["SLIPWAY_EVENT"] = json.dumps(event)
    done = subprocess.run(
        [sys.executable, str(SCRIPTS[task]), "job"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done, json.loads(log.read_text()) if log.exists() else None
