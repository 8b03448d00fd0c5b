"""A real node for the local control plane: containerd, runc, a bridge CNI, a kubelet and
kube-proxy.

`slipway dev cluster up --real-node` starts, next to kwok's fake node, three more processes:
containerd (Debian's package, with its own socket, root and state, so it never meets a
system containerd), and the kubelet and kube-proxy built from the control plane's pinned
Kubernetes release (`tools/cluster/kubelet/`). Pods reach the node only when they ask: it
carries the label `slipway.dev/node=real` and the taint `slipway.dev/real-node=true:NoSchedule`
(`REAL_NODE_SELECTOR`, `REAL_NODE_TOLERATION`), so every pod without them still lands on
kwok's node and the fast tests stay as they were.

Smallest working configuration on these machines (cgroup v1, no systemd as PID 1):
cgroupfs driver under a cgroup root of its own (`/slipway-<port>`), swap allowed, the
overlayfs snapshotter, host-local IPs on a bridge of its own (`slw<port>`, 10.201.x.0/24, no
masquerade to the outside: pods talk to this machine only). The bridge's address is the
node's address (the kubelet listens there, for logs and exec). Pods reach the API server as
in any cluster, at the `kubernetes` Service's address (10.96.0.1:443, in the serving
certificate): one DNAT rule on the bridge sends it to the API server on 127.0.0.1
(`route_localnet`). Other Services work through kube-proxy (iptables mode). There is no
cluster DNS: pods use Service addresses, not names. Images come from
`slipway.devcluster.images` (imported at start, never pulled); the sandbox image is the `pause`
built with the kubelet.

Everything lives under `<cache>/cluster/node/`: containerd's content and snapshots (kept, so
images are imported once), its state, the kubelet's folder, pod logs, CNI allocations. `down`
stops kube-proxy and the kubelet, kills what runs in the node's cgroups, stops containerd and
its shims, unmounts everything mounted under that folder, removes the cgroups, kube-proxy's
rules, the bridge and the DNAT rule.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import time
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from slipway.devcluster.binaries import NODE_COMPONENTS, ensure_binaries
from slipway.devcluster.processes import Processes, http_ok, terminate

log = logging.getLogger(__name__)

NODE_NAME = "real-node-0"
NODE_LABEL = ("slipway.dev/node", "real")
TAINT_KEY = "slipway.dev/real-node"
#: What a pod spec needs to run on the real node.
REAL_NODE_SELECTOR = {NODE_LABEL[0]: NODE_LABEL[1]}
REAL_NODE_TOLERATION = {
    "key": TAINT_KEY,
    "operator": "Equal",
    "value": "true",
    "effect": "NoSchedule",
}
#: The `kubernetes` Service's address: what in-cluster clients connect to.
API_SERVICE_IP = "10.96.0.1"
NAMESPACE = "k8s.io"  # containerd's namespace for the CRI
CNI_BIN_DIRS = (Path("/usr/lib/cni"), Path("/opt/cni/bin"))
PROCESSES = ("containerd", "kubelet", "kube-proxy")


class NodeError(RuntimeError):
    """The real node could not start or stop; the message says why and where to look."""


class RealNode:
    """The real node of the local control plane described by `config` (a ClusterConfig)."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.home: Path = config.state_dir / "node"
        self._logs = config.state_dir / "logs"
        self.processes = Processes(config.state_dir / "run", self._logs)

    # ----------------------------------------------------------------- names and places
    @property
    def port(self) -> int:
        return int(self.config.port)

    @property
    def kubelet_port(self) -> int:
        return self.port - 62

    @property
    def healthz_port(self) -> int:
        return self.port - 61

    @property
    def proxy_healthz_port(self) -> int:
        return self.port - 60

    @property
    def proxy_metrics_port(self) -> int:
        return self.port - 59

    @property
    def bridge(self) -> str:
        return f"slw{self.port}"[:15]

    @property
    def subnet(self) -> str:
        return f"10.201.{self.port % 250}.0/24"

    @property
    def gateway(self) -> str:
        return f"10.201.{self.port % 250}.1"

    @property
    def cgroup_root(self) -> str:
        return f"/slipway-{self.port}"

    @property
    def state(self) -> Path:
        """containerd's state (sockets, mounts of running containers): emptied by `down`."""
        return self.home / "state"

    @property
    def socket(self) -> Path:
        return self.home / "state" / "containerd.sock"

    @property
    def containerd_root(self) -> Path:
        """containerd's content and snapshots: kept across `down`, so images stay."""
        return self.home / "containerd"

    # ----------------------------------------------------------------- processes
    def pid(self, name: str) -> int | None:
        return self.processes.pid(name)

    def running(self) -> bool:
        return all(self.pid(name) for name in PROCESSES)

    def containerd_running(self) -> bool:
        return self.pid("containerd") is not None and self.socket.exists()

    def _start(
        self, name: str, argv: list[str], what: str, ready: Callable[[], bool], timeout: float
    ) -> None:
        """Start `name` and wait until `ready()`, `timeout` seconds at most; else stop the
        node and raise NodeError naming `what`, with the end of `name`'s log."""
        self.processes.start(name, argv, self.home)
        deadline = time.monotonic() + timeout
        if self.processes.wait_ready(name, ready, deadline, interval=0.3):
            return
        tail = self.processes.log_tail(name, 25)
        self.down()
        raise NodeError(f"{what} did not become ready; end of {self._logs / name}.log:\n{tail}")

    # ----------------------------------------------------------------- start
    def up(self, request: Any, timeout: float = 180) -> bool:
        """Start containerd and the kubelet unless they run; import the images that were
        built (`slipway.devcluster.images`). `request(method, path, body)` talks to the API
        server as the admin. Returns True when started now."""
        if self.running():
            self.import_images()
            return False
        if any(self.pid(name) for name in PROCESSES):
            self.down()
        _require_tools()
        binaries = ensure_binaries(self.config.cache_dir, components=NODE_COMPONENTS)
        for folder in (self.home, self.state, self.containerd_root, self.home / "cni"):
            folder.mkdir(parents=True, exist_ok=True)
        self._make_cgroup_root()
        self._write_cni_config()
        config = self._write_containerd_config()
        containerd = [_which("containerd"), f"--config={config}"]
        self._start("containerd", containerd, "containerd", self._containerd_answers, 60)
        self._import_pause(binaries["pause"])
        self.import_images()
        self._route_api_server()
        # A Node left from an earlier start would look Ready at once, and its pods are gone
        # with that start's containers: register afresh (the pod GC removes the orphans).
        try:
            request("DELETE", f"/api/v1/nodes/{NODE_NAME}")
        except urllib.error.HTTPError as error:
            if error.code != 404:
                raise
        kubelet = [str(binaries["kubelet"]), *self._kubelet_args()]

        def node_ready() -> bool:
            try:
                node = request("GET", f"/api/v1/nodes/{NODE_NAME}")
            except (OSError, urllib.error.URLError):
                return False
            conditions = node.get("status", {}).get("conditions", [])
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

        self._start("kubelet", kubelet, "the kubelet's node", node_ready, timeout)
        proxy = [str(binaries["kube-proxy"]), *self._proxy_args()]
        self._start("kube-proxy", proxy, "kube-proxy", self._proxy_healthy, timeout)
        return True

    def _proxy_args(self) -> list[str]:
        return [
            f"--kubeconfig={self.config.kubeconfig}",
            f"--hostname-override={NODE_NAME}",
            "--proxy-mode=iptables",
            f"--cluster-cidr={self.subnet}",
            # Pod to Service to a pod on the same bridge: the reply must come back through
            # this machine to be translated back, so every Service connection is masqueraded.
            "--masquerade-all",
            f"--bind-address={self.gateway}",
            f"--healthz-bind-address=127.0.0.1:{self.proxy_healthz_port}",
            f"--metrics-bind-address=127.0.0.1:{self.proxy_metrics_port}",
            "--conntrack-max-per-core=0",  # leave this machine's conntrack table alone
            "--v=1",
        ]

    def _proxy_healthy(self) -> bool:
        return http_ok(f"http://127.0.0.1:{self.proxy_healthz_port}/healthz")

    def _containerd_answers(self) -> bool:
        if not self.socket.exists():
            return False
        return self._ctr("version", check=False).returncode == 0

    def _ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [_which("ctr"), f"--address={self.socket}", f"--namespace={NAMESPACE}", *args]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise NodeError(f"`{' '.join(command)}` failed: {result.stderr.strip()}")
        return result

    def _make_cgroup_root(self) -> None:
        for hierarchy in _cgroup_hierarchies():
            (hierarchy / self.cgroup_root.lstrip("/")).mkdir(exist_ok=True)

    def _write_cni_config(self) -> None:
        network = {
            "cniVersion": "0.4.0",
            "name": f"slipway-{self.port}",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.bridge,
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": self.subnet, "gateway": self.gateway}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(self.state / "cni-ipam"),
                    },
                }
            ],
        }
        (self.home / "cni" / "10-slipway.conflist").write_text(json.dumps(network, indent=2))

    def _write_containerd_config(self) -> Path:
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        bin_dir = next((d for d in CNI_BIN_DIRS if (d / "bridge").is_file()), CNI_BIN_DIRS[0])
        text = f"""# Written by slipway dev cluster up --real-node (slipway/devcluster/node.py).
version = 2
root = "{self.containerd_root}"
state = "{self.state / "containerd"}"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{self.socket}"

[ttrpc]
  address = "{self.state / "containerd.ttrpc.sock"}"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{self.home / "opt"}"

[{cri}]
  sandbox_image = "{_pause_ref()}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  max_container_log_line_size = 16384

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  BinaryName = "{_find("runc") or "runc"}"
  SystemdCgroup = false

[{cri}.cni]
  bin_dir = "{bin_dir}"
  conf_dir = "{self.home / "cni"}"
  max_conf_num = 1
"""
        path = self.home / "containerd.toml"
        path.write_text(text)
        return path

    def _kubelet_args(self) -> list[str]:
        pki = self.config.state_dir / "pki"
        kubelet_config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": self.gateway,  # the node's address: only this machine reaches it
            "port": self.kubelet_port,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": self.healthz_port,
            # On the node's own bridge only; the API server connects without a client
            # certificate.
            "authentication": {
                "anonymous": {"enabled": True},
                "webhook": {"enabled": False},
                "x509": {"clientCAFile": str(pki / "ca.crt")},
            },
            "authorization": {"mode": "AlwaysAllow"},
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": self.cgroup_root,
            "cgroupsPerQOS": True,
            "failSwapOn": False,
            "podLogsDir": str(self.home / "pod-logs"),
            "resolvConf": "/etc/resolv.conf",
            "clusterDomain": "cluster.local",
            "registerNode": True,
            "registerWithTaints": [
                {"key": TAINT_KEY, "value": "true", "effect": "NoSchedule"},
            ],
            "maxPods": 60,
            # Imported images can never be pulled again: never collect them.
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            # A shared development machine: evict only when really short.
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
                "nodefs.inodesFree": "1%",
            },
            "makeIPTablesUtilChains": False,
            "nodeStatusUpdateFrequency": "10s",
            "syncFrequency": "10s",
            "serializeImagePulls": False,
            "enableControllerAttachDetach": False,
        }
        path = self.home / "kubelet.yaml"
        path.write_text(yaml.safe_dump(kubelet_config, sort_keys=False))
        return [
            f"--config={path}",
            f"--kubeconfig={self.config.kubeconfig}",
            f"--root-dir={self.home / 'kubelet'}",
            f"--cert-dir={self.home / 'kubelet-pki'}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={self.gateway}",
            f"--node-labels={NODE_LABEL[0]}={NODE_LABEL[1]}",
            "--v=1",
        ]

    def _route_api_server(self) -> None:
        """Pods connect to the `kubernetes` Service (10.96.0.1:443); send that, arriving on the
        node's bridge, to the API server on 127.0.0.1. The bridge (with the pods' gateway
        address, which is also the node's address) is made here, before the first pod, so
        the kubelet, the rule and the sysctl have an interface to name."""
        if not _link_exists(self.bridge):
            _run(["ip", "link", "add", self.bridge, "type", "bridge"])
        prefix = self.subnet.split("/")[1]
        addresses = subprocess.run(
            ["ip", "-o", "addr", "show", "dev", self.bridge], capture_output=True, text=True
        ).stdout
        if f" {self.gateway}/" not in addresses:
            _run(["ip", "addr", "add", f"{self.gateway}/{prefix}", "dev", self.bridge])
        _run(["ip", "link", "set", self.bridge, "up"])
        Path(f"/proc/sys/net/ipv4/conf/{self.bridge}/route_localnet").write_text("1\n")
        rule = self._dnat_rule()
        iptables = _which("iptables")
        if subprocess.run([iptables, "-t", "nat", "-C", *rule], capture_output=True).returncode:
            _run([iptables, "-t", "nat", "-A", *rule])

    def _dnat_rule(self) -> list[str]:
        return [
            "PREROUTING",
            "-i",
            self.bridge,
            "-d",
            f"{API_SERVICE_IP}/32",
            "-p",
            "tcp",
            "--dport",
            "443",
            "-j",
            "DNAT",
            "--to-destination",
            f"127.0.0.1:{self.port}",
            "-m",
            "comment",
            "--comment",
            f"slipway-{self.port}",
        ]

    # ----------------------------------------------------------------- images
    def _import_pause(self, pause_binary: Path) -> None:
        from slipway.devcluster.images import PAUSE, Builder

        builder = Builder(self.config.cache_dir)
        builder.ensure_pause(pause_binary)
        builder.export(_pause_ref(), PAUSE)

    def import_images(self) -> list[str]:
        """Import every image archive built so far that containerd does not have at that
        id yet. Returns the names imported."""
        from slipway.devcluster.images import Builder

        archives = Builder(self.config.cache_dir).archives
        stamps = self.containerd_root / "slipway-imported"
        stamps.mkdir(parents=True, exist_ok=True)
        present = self._ctr("images", "list", "--quiet", check=False).stdout.split()
        imported = []
        for archive in sorted(archives.glob("*.tar")):
            image_id = archive.with_suffix(".id")
            stamp = stamps / f"{archive.stem}.id"
            wanted = image_id.read_text() if image_id.is_file() else ""
            ref_present = any(p.rsplit("/", 1)[-1] == f"{archive.stem}:dev" for p in present)
            if ref_present and stamp.is_file() and stamp.read_text() == wanted:
                continue
            self._ctr("images", "import", "--no-unpack=false", str(archive))
            stamp.write_text(wanted)
            imported.append(archive.stem)
        return imported

    # ----------------------------------------------------------------- stop
    def down(self, timeout: float = 20) -> list[str]:
        """Stop the node and leave nothing behind but containerd's image store. Returns the
        names of the processes that were running."""
        stopped = []
        for name in ("kube-proxy", "kubelet"):  # one after the other, as named
            stopped += self.processes.stop([name], timeout, group=False)
        self._kill_cgroup_processes()
        stopped += self.processes.stop(["containerd"], timeout, group=False)
        self._kill_shims()
        self._unmount_all()
        self._remove_cgroups()
        if shutil.which("iptables"):
            rule = self._dnat_rule()
            while not subprocess.run(
                ["iptables", "-t", "nat", "-D", *rule], capture_output=True
            ).returncode:
                pass
        if stopped and "kube-proxy" in stopped:
            self._clean_proxy_rules()
        if _link_exists(self.bridge):
            subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        for folder in ("state", "kubelet", "pod-logs"):
            shutil.rmtree(self.home / folder, ignore_errors=True)
        return stopped

    def _clean_proxy_rules(self) -> None:
        """kube-proxy's iptables chains (`kube-proxy --cleanup`); they name only Services of
        this control plane."""
        binary = next((c for c in NODE_COMPONENTS if c.name == "kube-proxy"), None)
        if binary is None:
            return
        from slipway.devcluster.binaries import locate

        found = locate(binary, self.config.cache_dir)
        if found is not None:
            subprocess.run(
                [str(found), "--cleanup", "--proxy-mode=iptables"],
                capture_output=True,
                timeout=60,
                check=False,
            )

    def _cgroup_pids(self) -> set[int]:
        pids: set[int] = set()
        for hierarchy in _cgroup_hierarchies():
            root = hierarchy / self.cgroup_root.lstrip("/")
            if not root.is_dir():
                continue
            for procs in root.rglob("cgroup.procs"):
                with contextlib.suppress(OSError, ValueError):
                    pids.update(int(line) for line in procs.read_text().split())
        return pids

    def _kill_cgroup_processes(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while (pids := self._cgroup_pids()) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)

    def _kill_shims(self, timeout: float = 10) -> None:
        """containerd's shims outlive it by design; ours name our socket."""
        marker = str(self.socket).encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"containerd-shim-runc-v2") and marker in argv:
                terminate(int(entry.name), timeout, sig=signal.SIGKILL)

    def _unmount_all(self) -> None:
        home = str(self.home.resolve())
        mounts = []
        with contextlib.suppress(OSError):
            for line in Path("/proc/self/mountinfo").read_text().splitlines():
                point = line.split()[4].replace("\\040", " ")
                if point == home or point.startswith(home + "/"):
                    mounts.append(point)
        for point in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "--lazy", point], capture_output=True)

    def _remove_cgroups(self) -> None:
        for hierarchy in _cgroup_hierarchies():
            root = hierarchy / self.cgroup_root.lstrip("/")
            if not root.is_dir():
                continue
            folders = [p for p in root.rglob("*") if p.is_dir()]
            for folder in [*sorted(folders, key=lambda p: -len(p.parts)), root]:
                with contextlib.suppress(OSError):
                    folder.rmdir()

    def mounts(self) -> list[str]:
        """Mount points under the node's folder (none after `down`)."""
        home = str(self.home.resolve())
        found = []
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4]
            if point == home or point.startswith(home + "/"):
                found.append(point)
        return found


def _pause_ref() -> str:
    from slipway.devcluster.images import pause_ref

    return pause_ref()


def _cgroup_hierarchies() -> list[Path]:
    """The cgroup hierarchies to make the node's cgroup root in: every v1 controller
    mounted (and the named systemd one), or the single v2 tree."""
    base = Path("/sys/fs/cgroup")
    if (base / "cgroup.controllers").is_file():
        return [base]
    return [p for p in sorted(base.iterdir()) if p.is_dir() and (p / "cgroup.procs").is_file()]


def _require_tools() -> None:
    missing = [t for t in ("containerd", "ctr", "runc", "iptables", "ip") if not _find(t)]
    if not any((d / "bridge").is_file() for d in CNI_BIN_DIRS):
        missing.append("the CNI plugins (containernetworking-plugins)")
    if missing:
        raise NodeError(
            f"the real node needs {', '.join(missing)}: `make cluster-real` installs them"
        )


def _find(tool: str) -> str | None:
    return shutil.which(tool) or next(
        (str(p) for d in ("/usr/sbin", "/sbin") if (p := Path(d) / tool).is_file()), None
    )


def _which(tool: str) -> str:
    found = _find(tool)
    if found is None:
        raise NodeError(f"`{tool}` is missing: `make cluster-real` installs it")
    return found


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise NodeError(f"`{' '.join(argv)}` failed: {result.stderr.strip()}")


def _link_exists(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()
