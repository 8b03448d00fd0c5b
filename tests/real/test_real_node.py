"""The real node's life: `up --real-node` on a control plane of its own (own state, ports,
bridge, cgroup root), a pod really running there, and `down` leaving nothing behind: no
process, no mount, no cgroup, no bridge, no iptables rule."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from kubernetes import client, config

from slipway.devcluster.cluster import ClusterConfig, LocalCluster
from slipway.devcluster.images import pause_ref
from slipway.devcluster.node import NODE_NAME, PROCESSES, _cgroup_hierarchies
from slipway.settings import Settings
from tests.helpers import wait_for
from tests.real.conftest import on_real_node


def _rules(comment: str) -> list[str]:
    rules = subprocess.run(["iptables", "-t", "nat", "-S"], capture_output=True, text=True)
    return [line for line in rules.stdout.splitlines() if comment in line]


@pytest.mark.usefixtures("real_node")  # the images and binaries are there
def test_up_runs_a_pod_and_down_leaves_nothing() -> None:
    """A second control plane with a real node runs a pod (its sandbox and container both the
    pause image); `down` stops every process and undoes every mount, cgroup, link and rule."""
    # A short path: the kubelet's sockets live under it (a socket path has 107 bytes at most).
    tmp_path = Path(tempfile.mkdtemp(prefix="slw-", dir="/tmp"))
    settings = Settings.from_env()
    (tmp_path / "bin").symlink_to(settings.cache_dir / "bin")  # reuse the built binaries
    port = settings.cluster_port + 1100
    cluster = LocalCluster(ClusterConfig(cache_dir=tmp_path, port=port))
    node = cluster.node
    try:
        assert cluster.up(real_node=True) is True
        pids = [node.pid(name) for name in PROCESSES]
        assert all(pids), pids
        api = config.new_client_from_config(config_file=str(cluster.config.kubeconfig))
        core = client.CoreV1Api(api)
        pod = {
            "metadata": {"name": "sleeper"},
            "spec": on_real_node(
                {
                    "containers": [
                        {"name": "pause", "image": pause_ref(), "imagePullPolicy": "Never"}
                    ]
                }
            ),
        }
        core.create_namespaced_pod("default", pod)

        def running() -> bool:
            found = core.read_namespaced_pod("sleeper", "default")
            return found.status.phase == "Running"

        wait_for(running, timeout=120, interval=0.5, message="the pod running")
        assert core.read_namespaced_pod("sleeper", "default").spec.node_name == NODE_NAME
        assert node.mounts(), "a running pod mounts its root filesystem and sandbox"
        assert Path(f"/sys/class/net/{node.bridge}").exists()
        assert _rules(f"slipway-{port}")
        api.close()
    finally:
        stopped = cluster.down()
    assert set(PROCESSES) <= set(stopped)
    for pid in pids:
        assert pid is None or not Path(f"/proc/{pid}").exists() or _zombie(pid), pid
    assert node.mounts() == []
    assert not Path(f"/sys/class/net/{node.bridge}").exists()
    assert _rules(f"slipway-{port}") == []
    for hierarchy in _cgroup_hierarchies():
        assert not (hierarchy / node.cgroup_root.lstrip("/")).exists()
    assert not (node.home / "state").exists()
    shutil.rmtree(tmp_path, ignore_errors=True)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
