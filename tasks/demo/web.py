"""`make demo-web`: the web page with the seed's two capabilities and the real tools, until
Ctrl-C.

Starts (or reuses) the local control plane, makes the namespace `slipway-web` if it is not
there (runs of earlier demos stay: they are the page's "My results"), runs the real tools of
tasks/ as HTTP services on loopback, applies the seed's Shipyard
(`manifests/examples/shipyard-osint.yaml`: "Check a phone number", "Is this photo
authentic?") with TaskProviders pointing at the tools and the photo gate, starts the operator
(its gateway serves the page), and prints the page's address with a sign-in link for a demo
user: a ServiceAccount that may start and read runs in that namespace only. Generated photos
to try are written to a folder it names.

Environment: DEMO_WEB_PORT (default 8080, or a free port when 8080 is taken).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from capabilities import TOOLS, providers
from harness import ROOT, SLIPWAY, free_port, kubectl, start_operator, stop

NAMESPACE = "slipway-web"
USER = "demo-user"


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def ensure_namespace() -> None:
    """The local control plane up, the CRDs applied, the namespace there (kept if it was)."""
    subprocess.run([*SLIPWAY, "dev", "cluster", "up"], check=True, capture_output=True)
    line = subprocess.run(
        [*SLIPWAY, "dev", "cluster", "env"], check=True, capture_output=True, text=True
    ).stdout
    os.environ["KUBECONFIG"] = line.split("=", 1)[1].strip()
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    kubectl("wait", "--for", "condition=established", "--timeout=60s", "crd", "--all")
    if kubectl("get", "namespace", NAMESPACE, "--ignore-not-found", "-o", "name").strip() == "":
        kubectl("create", "namespace", NAMESPACE)


def demo_user_token() -> str:
    """A ServiceAccount allowed to start and read runs in NAMESPACE only; a 24-hour token."""
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": f"{USER}-runs", "namespace": NAMESPACE},
        "rules": [
            {
                "apiGroups": ["slipway.dev"],
                "resources": ["sequenceruns"],
                "verbs": ["create", "get"],
            }
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": f"{USER}-runs", "namespace": NAMESPACE},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": role["metadata"]["name"],
        },
        "subjects": [{"kind": "ServiceAccount", "name": USER, "namespace": NAMESPACE}],
    }
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": USER, "namespace": NAMESPACE},
    }
    objects = {"apiVersion": "v1", "kind": "List", "items": [account, role, binding]}
    kubectl("apply", "-f", "-", stdin=json.dumps(objects))
    return kubectl("create", "token", USER, "-n", NAMESPACE, "--duration=24h").strip()


def main() -> int:
    ensure_namespace()
    work = Path(tempfile.mkdtemp(prefix="slipway-web-"))
    photos = work / "photos"
    subprocess.run(
        [sys.executable, str(ROOT / "tasks" / "common" / "images.py"), str(photos)],
        check=True,
        capture_output=True,
    )
    ports = {task: free_port() for task in TOOLS}
    # The tools fetch uploaded photos from the gateway on loopback: allow private addresses.
    tool_env = {**os.environ, "TOOL_ALLOW_PRIVATE_URLS": "true"}
    children: list[subprocess.Popen[bytes]] = []
    wanted = int(os.environ.get("DEMO_WEB_PORT", "8080"))
    port = wanted if port_free(wanted) else free_port()
    os.environ["SLIPWAY_UPLOAD_DIR"] = str(work / "uploads")
    try:
        for task, (script, extra) in TOOLS.items():
            arguments = [str(photos / "catalogue")] if extra else []
            children.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        str(script),
                        "serve",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(ports[task]),
                        *extra,
                        *arguments,
                    ],
                    env=tool_env,
                    stdout=subprocess.DEVNULL,
                )
            )
        kubectl(
            "apply", "-n", NAMESPACE, "-f", str(ROOT / "manifests/examples/shipyard-osint.yaml")
        )
        kubectl("apply", "-n", NAMESPACE, "-f", str(ROOT / "tasks/photo-gate/taskprovider.yaml"))
        objects = {"apiVersion": "v1", "kind": "List", "items": providers(ports)}
        kubectl("apply", "-n", NAMESPACE, "-f", "-", stdin=json.dumps(objects))
        operator, gateway = start_operator(NAMESPACE, work, port=port)
        children.append(operator)
        token = demo_user_token()
        print(
            f"""
Slipway's web page is running.

  Open:            {gateway}/
  Sign in as {USER} (may start checks in namespace {NAMESPACE} only):
                   {gateway}/#token={token}

  Photos to try:   {photos}/  (unedited.jpg passes, edited.jpg fails, catalogue-copy.jpg warns)
  A phone number:  +44 20 7946 0958
  Operator log:    {work / "operator.log"}

Press Ctrl-C to stop.""",
            flush=True,
        )
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        try:
            while not done.wait(1):
                if operator.poll() is not None:
                    print(f"the operator stopped; its log: {work / 'operator.log'}")
                    return 1
        except KeyboardInterrupt:
            pass
        print("\nstopping")
        return 0
    finally:
        stop(children)


if __name__ == "__main__":
    raise SystemExit(main())
