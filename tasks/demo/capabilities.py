"""`make demo-capabilities`: the seed's two capabilities, with real tools, on the local
control plane.

Starts (or reuses) the local control plane and the operator, runs the real tools as HTTP
services on loopback (checknumber; extract-metadata, geolookup and author-search), applies the
seed's Shipyard (`manifests/examples/shipyard-osint.yaml`) with TaskProviders pointing at
them and the photo-authenticity gate (`tasks/photo-gate/taskprovider.yaml`), then sends four
requests the way any client would — one HTTP POST of `<stage>.<sequence>.triggered` each:

  - a phone number                                  -> expected pass
  - an unedited photo with GPS, claimed to be there -> expected pass
  - an edited photo without camera EXIF             -> expected fail
  - a near-copy of a photo in the catalogue         -> expected warning

and prints each verdict in plain language. Exits 0 only when all four are as expected.
Photos and the catalogue are generated (tasks/common/images.py); nothing is downloaded.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import (
    ROOT,
    apply_objects,
    client_token,
    free_port,
    fresh_namespace,
    get,
    kubectl,
    post,
    start_operator,
    stop,
)

TASKS = ROOT / "tasks"
NAMESPACE = "slipway-capabilities"

TOOLS = {  # task: (script, extra arguments)
    "checknumber": (TASKS / "checknumber" / "checknumber.py", []),
    "extract-metadata": (TASKS / "extract-metadata" / "extract_metadata.py", []),
    "geolookup": (TASKS / "geolookup" / "geolookup.py", []),
    "author-search": (TASKS / "author-search" / "author_search.py", ["--catalogue"]),
}


def providers(ports: dict[str, int]) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "slipway.dev/v1alpha1",
            "kind": "TaskProvider",
            "metadata": {"name": task},
            "spec": {"task": task, "cloudEvent": {"url": f"http://127.0.0.1:{port}/"}},
        }
        for task, port in ports.items()
    ]


def plain(case: str, status: dict[str, Any]) -> str:
    """One sentence a person can read, from a finished run's status."""
    data = status.get("data") or {}
    if case == "phone":
        found = data.get("checknumber") or {}
        tasks = status.get("tasks") or [{}]
        details = ", ".join(
            str(found[k]) for k in ("e164", "type", "country", "carrier") if found.get(k)
        )
        return f"{status.get('result')}: {tasks[0].get('message')} ({details})"
    evaluation = data.get("evaluation") or {}
    score = evaluation.get("score")
    failed = [
        o.get("displayName") or o.get("sli")
        for o in evaluation.get("objectives", [])
        if o.get("status") in ("fail", "warning")
    ]
    author = (data.get("author-search") or {}).get("author")
    parts = [f"{status.get('result')}"]
    if score is not None:
        parts.append(f"score {score:.0f}/100")
    if failed:
        parts.append("doubts: " + "; ".join(map(str, failed)))
    if author:
        parts.append(f"known copy by {author}")
    return ", ".join(parts)


def main() -> int:
    fresh_namespace(NAMESPACE)
    work = Path(tempfile.mkdtemp(prefix="slipway-capabilities-"))
    photos = work / "photos"
    subprocess.run(
        [sys.executable, str(TASKS / "common" / "images.py"), str(photos)],
        check=True,
        capture_output=True,
    )
    children: list[subprocess.Popen[bytes]] = []
    ports = {task: free_port() for task in TOOLS}
    images_port = free_port()
    tool_env = {**os.environ, "TOOL_ALLOW_PRIVATE_URLS": "true"}  # photos come from loopback
    try:
        children.append(
            subprocess.Popen(
                [sys.executable, "-m", "http.server", str(images_port), "--bind", "127.0.0.1"],
                cwd=photos,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        for task, (script, extra) in TOOLS.items():
            arguments = [str(photos / "catalogue")] if extra else []
            children.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        str(script),
                        "serve",
                        "--port",
                        str(ports[task]),
                        *extra,
                        *arguments,
                    ],
                    env=tool_env,
                    stdout=subprocess.DEVNULL,
                )
            )
        operator, gateway = start_operator(NAMESPACE, work)
        children.append(operator)
        objects = providers(ports)
        kubectl(
            "apply", "-n", NAMESPACE, "-f", str(ROOT / "manifests/examples/shipyard-osint.yaml")
        )
        kubectl("apply", "-n", NAMESPACE, "-f", str(TASKS / "photo-gate" / "taskprovider.yaml"))
        apply_objects(NAMESPACE, objects)
        token = client_token(NAMESPACE)

        base = f"http://127.0.0.1:{images_port}"
        cases = {  # name: (sequence, data, expected result)
            "phone": ("sequence-one", {"number": "+44 20 7946 0958"}, "pass"),
            "unedited photo": (
                "sequence-two",
                {
                    "image": f"{base}/unedited.jpg",
                    "claimedLocation": {"lat": 50.3755, "lon": -4.1427},
                },
                "pass",
            ),
            "edited photo": ("sequence-two", {"image": f"{base}/edited.jpg"}, "fail"),
            "catalogue copy": ("sequence-two", {"image": f"{base}/catalogue-copy.jpg"}, "warning"),
        }
        runs = {}
        started = time.monotonic()
        for name, (sequence, data, _) in cases.items():
            status, answer = post(
                f"{gateway}/v1/namespaces/{NAMESPACE}/events",
                {
                    "specversion": "1.0",
                    "id": f"demo-{name}",
                    "source": "make-demo-capabilities",
                    "type": f"dev.{sequence}.triggered",
                    "datacontenttype": "application/json",
                    "data": data,
                },
                token,
            )
            if status != 202:
                print(f"{name}: the gateway answered {status}: {answer}")
                return 1
            runs[name] = answer["run"]
        ok = True
        for name, run in runs.items():
            reply = get(f"{gateway}/v1/namespaces/{NAMESPACE}/sequenceruns/{run}?wait=120s", token)
            status = reply["status"]
            expected = cases[name][2]
            mark = "as expected" if status.get("result") == expected else f"EXPECTED {expected}"
            ok = ok and status.get("result") == expected
            print(f"{name:<15} {plain('phone' if name == 'phone' else 'photo', status)}  [{mark}]")
        print(f"\nall four in {time.monotonic() - started:.1f} s\n")
        print(kubectl("get", "sequenceruns", "-n", NAMESPACE))
        ok = terminal(gateway, token) and ok
        print("demo-capabilities " + ("passed" if ok else "FAILED"))
        return 0 if ok else 1
    finally:
        stop(children)


def terminal(gateway: str, token: str) -> bool:
    """The phone check once more, as a person at a terminal does it: `kubectl slipway
    trigger … --wait` (kubectl finds the `kubectl-slipway` this virtualenv installed)."""
    shown = "kubectl slipway trigger dev.sequence-one -n slipway-capabilities \\\n    "
    shown += "--data number='+44 20 7946 0958' --wait"
    command = [
        "kubectl", "slipway", "trigger", "dev.sequence-one", "-n", NAMESPACE,
        "--data", "number=+44 20 7946 0958", "--wait", "--gateway", gateway, "--token", token,
    ]  # fmt: skip
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    answer = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PATH": path},
        check=False,
    )
    print(f"$ {shown}\n{answer.stdout}{answer.stderr}")
    return answer.returncode == 0


if __name__ == "__main__":
    raise SystemExit(main())
