"""What `make demo`, `make demo-capabilities` and `make bench` share: a fresh namespace on the
local control plane with the CRDs applied, the operator as a child process, and small HTTP
and kubectl helpers. Standard library only (plus the `slipway` command)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SLIPWAY = [sys.executable, "-m", "slipway"]
READY = b"Slipway operator is ready"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> str:
    result = subprocess.run(
        ["kubectl", *args], input=stdin, capture_output=True, text=True, timeout=120, check=False
    )
    if check and result.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def apply_objects(namespace: str, objects: list[dict[str, Any]]) -> str:
    """`kubectl apply` of `objects` (as one List) in `namespace`."""
    listing = {"apiVersion": "v1", "kind": "List", "items": objects}
    return kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(listing))


def wait(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise SystemExit(f"{what} did not happen within {timeout:.0f} s")


def post(url: str, body: dict[str, Any], token: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Content-Type": "application/cloudevents+json",
            "Authorization": f"Bearer {token}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def get(url: str, token: str) -> dict[str, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=150) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def fresh_namespace(namespace: str) -> Path:
    """Start (or reuse) the local control plane, apply the CRDs, and make `namespace` anew.
    Sets KUBECONFIG for this process and its children; returns the kubeconfig's path."""
    subprocess.run([*SLIPWAY, "dev", "cluster", "up"], check=True, capture_output=True)
    line = subprocess.run(
        [*SLIPWAY, "dev", "cluster", "env"], check=True, capture_output=True, text=True
    ).stdout
    kubeconfig = line.split("=", 1)[1].strip()
    os.environ["KUBECONFIG"] = kubeconfig
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    kubectl("wait", "--for", "condition=established", "--timeout=60s", "crd", "--all")
    kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=true")
    kubectl("create", "namespace", namespace)
    return Path(kubeconfig)


def start_tool(
    mode: str, log: Path | None = None, quiet: bool = False
) -> tuple[subprocess.Popen[bytes], int]:
    """The example tool (`tasks/demo/tools.py`, `mode` sync or async) on a free port, with
    its events in `log` when given; the process and its port."""
    port = free_port()
    command = [sys.executable, str(ROOT / "tasks" / "demo" / "tools.py"), "--port", str(port)]
    command += ["--mode", mode, *(["--log", str(log)] if log is not None else [])]
    out = subprocess.DEVNULL if quiet else None
    return subprocess.Popen(command, stdout=out, stderr=out), port


def start_operator(
    namespace: str, work: Path, port: int | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """The operator watching `namespace`, its gateway on `port` (default: a free one); waits
    until it is ready. Returns the process and the gateway's URL."""
    port = port or free_port()
    gateway = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "SLIPWAY_NAMESPACE": namespace,
        "SLIPWAY_GATEWAY_ADDRESS": f"127.0.0.1:{port}",
        "SLIPWAY_GATEWAY_URL": gateway,
    }
    log = work / "operator.log"
    with log.open("wb") as out:
        process = subprocess.Popen([*SLIPWAY, "run"], env=env, stdout=out, stderr=subprocess.STDOUT)
    wait(lambda: READY in log.read_bytes() or process.poll() is not None, 60, "the operator start")
    if process.poll() is not None:
        raise SystemExit(f"the operator exited:\n{log.read_text()}")
    return process, gateway


def client_token(namespace: str, name: str = "client") -> str:
    """A ServiceAccount allowed to create and read sequenceruns in `namespace`, and a token
    for it from `kubectl create token`: how a person or an app calls the gateway."""
    kubectl("create", "serviceaccount", name, "-n", namespace)
    kubectl(
        "create",
        "role",
        f"{name}-runs",
        "-n",
        namespace,
        "--verb=create,get",
        "--resource=sequenceruns.slipway.dev",
    )
    kubectl(
        "create",
        "rolebinding",
        f"{name}-runs",
        "-n",
        namespace,
        f"--role={name}-runs",
        f"--serviceaccount={namespace}:{name}",
    )
    return kubectl("create", "token", name, "-n", namespace).strip()


def stop(children: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every child, then SIGKILL what has not exited after 15 s."""
    for child in children:
        child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()
