"""Several operator replicas against one namespace, and a Service in front of their gateways.

`Replicas` starts `python -m slipway run` processes named r0, r1, … (SLIPWAY_IDENTITY) with
short Leases, each with its own gateway port and log. `Service` is what a Kubernetes Service
does for the gateways: a loopback HTTP proxy that sends each request to one live replica
(round robin), and to the next when one refuses the connection. Every replica tells tools
to call back through it, so a tool's answer reaches whichever replica is up.
"""

from __future__ import annotations

import re
import signal
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import aiohttp
from aiohttp import web

from tests.conftest import OperatorProcess
from tests.helpers import wait_for
from tests.tools import ServerThread

#: Short Leases for tests: a replica that stops renewing loses its runs after 10 s.
LEASE_DURATION = 10.0
LEASE_RENEW = 2.0
#: Finished runs kept per sequence: more than any test creates.
KEEP_RUNS = 10_000

WORKER_STARTED = re.compile(
    r"^(\S+ \S+) INFO .*: run (\S+)/(\S+): worker started on (\S+)$", re.MULTILINE
)


@dataclass
class Service(ServerThread):
    """A round-robin HTTP proxy over the replicas' gateways, on its own thread."""

    targets: list[str] = field(default_factory=list)
    _next: int = 0

    async def _listen(self) -> Callable[[], Awaitable[None]]:
        app = web.Application(client_max_size=2**22)
        app.router.add_route("*", "/{path:.*}", self._forward)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))

        async def close() -> None:
            await self._session.close()
            await runner.cleanup()

        return close

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
        }
        targets = list(self.targets)
        for i in range(len(targets)):
            target = targets[(self._next + i) % len(targets)]
            try:
                async with self._session.request(
                    request.method, target + request.path_qs, data=body, headers=headers
                ) as reply:
                    data = await reply.read()
                    self._next += 1
                    return web.Response(
                        status=reply.status,
                        body=data,
                        content_type=reply.content_type,
                    )
            except aiohttp.ClientError:
                # Refused, or the replica died mid-request (its answer cut off): the next
                # one, as a client retrying through a Service would reach.
                continue
        return web.json_response({"error": "no_endpoint"}, status=503)


class Replicas:
    """Operator replicas r0, r1, … on one namespace, behind one `Service`."""

    def __init__(self, namespace: str, logs: Path, service: Service) -> None:
        self.namespace = namespace
        self.logs = logs
        self.service = service
        self.processes: dict[str, OperatorProcess] = {}

    def start(self, name: str) -> OperatorProcess:
        process = self.processes.get(name)
        if process is None:
            process = OperatorProcess(
                self.namespace,
                self.logs / f"{name}.log",
                env={
                    "SLIPWAY_IDENTITY": name,
                    "SLIPWAY_LEASE_DURATION": str(LEASE_DURATION),
                    "SLIPWAY_LEASE_RENEW": str(LEASE_RENEW),
                    "SLIPWAY_GATEWAY_URL": self.service.url,
                    # Keep every finished run: the tests count them all (retention's default
                    # of 100 per sequence would delete runs a test still waits for).
                    "SLIPWAY_HISTORY_SUCCESSFUL_RUNS": str(KEEP_RUNS),
                    "SLIPWAY_HISTORY_FAILED_RUNS": str(KEEP_RUNS),
                },
            )
            self.processes[name] = process
        process.start()
        if process.gateway_url not in self.service.targets:
            self.service.targets.append(process.gateway_url)
        return process

    def running(self) -> list[str]:
        return [n for n, p in self.processes.items() if p.process and p.process.poll() is None]

    def kill(self, name: str) -> None:
        process = self.processes[name]
        if process.gateway_url in self.service.targets:
            self.service.targets.remove(process.gateway_url)
        process.kill()

    def pause(self, name: str) -> None:
        """SIGSTOP (a replica cut off from everything); out of the Service meanwhile."""
        process = self.processes[name]
        self.service.targets.remove(process.gateway_url)
        assert process.process is not None
        process.process.send_signal(signal.SIGSTOP)

    def resume(self, name: str) -> None:
        process = self.processes[name]
        assert process.process is not None
        process.process.send_signal(signal.SIGCONT)
        self.service.targets.append(process.gateway_url)

    def wait_acting(
        self, names: list[str], members: int, timeout: float = 60, since: int = 0
    ) -> None:
        """Until each of `names` logged (after character `since` of its log) that it acts
        among `members` live members."""
        for name in names:
            wanted = f"ownership: {name} of {members} live members"

            def acting(name: str = name, wanted: str = wanted) -> bool:
                lines = [
                    line
                    for line in self.processes[name].log()[since:].splitlines()
                    if "ownership: " in line
                ]
                return bool(lines) and wanted in lines[-1] and "not acting" not in lines[-1]

            wait_for(acting, timeout=timeout, message=f"{name} acts among {members}")

    def worker_starts(self) -> list[tuple[datetime, str, str]]:
        """(when, run, replica) of every run worker start in every replica's log."""
        found = []
        for name, process in self.processes.items():
            if not process.log_path.exists():
                continue
            for when, _, run, replica in WORKER_STARTED.findall(process.log()):
                assert replica == name
                found.append((datetime.strptime(when, "%Y-%m-%d %H:%M:%S,%f"), run, replica))
        return sorted(found)

    def shares(self, runs: set[str]) -> Counter[str]:
        """How many of `runs` each replica started a worker for."""
        return Counter(replica for _, run, replica in self.worker_starts() if run in runs)

    def stop_all(self) -> dict[str, int]:
        codes = {}
        for name, process in self.processes.items():
            if process.process is not None and process.process.poll() is None:
                codes[name] = process.stop()
        return codes

    def logs_text(self) -> str:
        return "\n".join(
            f"===== {name}\n{p.log()[-6000:]}"
            for name, p in self.processes.items()
            if p.log_path.exists()
        )
