"""A real Prometheus for tests, scraping a small exporter the test controls.

`Exporter` serves gauges in the Prometheus text format on loopback; `PrometheusServer` runs the
real `prometheus` binary (found on PATH or in the cache, or built once from the pinned module
in tools/prometheus/, see `slipway.devcluster.binaries.ensure_prometheus`) on a free loopback
port with a config that scrapes the exporter every second, and stops it afterwards.
"""

from __future__ import annotations

import json
import socket
import subprocess
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from slipway.devcluster.binaries import ensure_prometheus
from slipway.settings import Settings
from tests.helpers import wait_for

Labels = tuple[tuple[str, str], ...]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Exporter:
    """Gauges served at `/metrics` in the Prometheus text format; `set` changes them."""

    def __init__(self) -> None:
        self._values: dict[tuple[str, Labels], float] = {}
        self._lock = threading.Lock()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.render().encode()
                self.send_response(200 if self.path == "/metrics" else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:  # keep test output quiet
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def set(self, name: str, value: float, **labels: str) -> None:
        """Set gauge `name{labels}` to `value`."""
        with self._lock:
            self._values[(name, tuple(sorted(labels.items())))] = value

    def render(self) -> str:
        with self._lock:
            items = sorted(self._values.items())
        lines = []
        for name in sorted({name for (name, _), _ in items}):
            lines.append(f"# TYPE {name} gauge")
            for (metric, labels), value in items:
                if metric == name:
                    pairs = ",".join(f'{key}="{val}"' for key, val in labels)
                    lines.append(f"{name}{{{pairs}}} {value!r}")
        return "\n".join(lines) + "\n"

    def start(self) -> Exporter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


class PrometheusServer:
    """The real Prometheus on a free loopback port, scraping `targets` every second."""

    def __init__(self, targets: list[str], work_dir: Path | None = None) -> None:
        self.binary = ensure_prometheus(Settings.from_env().cache_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._owned_dir = None if work_dir else tempfile.TemporaryDirectory(prefix="prometheus-")
        self.work_dir = work_dir or Path(self._owned_dir.name)  # type: ignore[union-attr]
        config = {  # JSON is YAML: no YAML writer needed
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": "slipway-exporter", "static_configs": [{"targets": targets}]}
            ],
        }
        (self.work_dir / "prometheus.yml").write_text(json.dumps(config))
        self.log_path = self.work_dir / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrometheusServer:
        """Start it and wait until it answers queries."""
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    str(self.binary),
                    f"--config.file={self.work_dir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.work_dir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--storage.tsdb.retention.time=1h",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._ready, timeout=60, message="prometheus ready")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited:\n{self.log()}")
        return _get(f"{self.url}/-/ready")[0] == 200

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector `promql` gives now (raises on an error answer)."""
        params = urllib.parse.urlencode({"query": promql})
        status, raw = _get(f"{self.url}/api/v1/query?{params}")
        body = json.loads(raw)
        assert status == 200, body
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for_value(self, promql: str, value: float, timeout: float = 60) -> None:
        """Wait until `promql` gives exactly one sample equal to `value`."""

        def seen() -> bool:
            result = self.query(promql)
            return len(result) == 1 and float(result[0]["value"][1]) == value

        wait_for(seen, timeout=timeout, message=f"prometheus: {promql} == {value}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        if self._owned_dir is not None:
            self._owned_dir.cleanup()


def _get(url: str) -> tuple[int, bytes]:
    """GET `url`: (status, body), for error statuses too. (An HTTPError holds the connection
    open until closed: Prometheus answers 503 while it starts.)"""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return int(answer.status), answer.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()
