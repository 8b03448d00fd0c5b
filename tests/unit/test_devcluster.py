"""Binary lookup order, cache folders and the async leak guard, without a cluster."""

import asyncio
import stat
from pathlib import Path

import pytest

from slipway.devcluster import binaries
from slipway.devcluster.binaries import COMPONENTS, build_dir, locate, module_version
from slipway.devcluster.cluster import ClusterConfig
from tests.helpers import LeakedTasksError, WaitTimeoutError, run_async, wait_for

ETCD = next(c for c in COMPONENTS if c.name == "etcd")


def _exe(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_every_module_pins_a_version() -> None:
    """Each tools/cluster module's go.mod pins the upstream module it builds."""
    for module in {c.module for c in COMPONENTS}:
        assert module_version(binaries.tools_dir() / module, module).startswith("v")


def test_kubebuilder_assets_win_over_path_and_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """KUBEBUILDER_ASSETS is looked at first, then PATH, then the cache."""
    assets = _exe(tmp_path / "assets" / "etcd").parent
    on_path = _exe(tmp_path / "path" / "etcd").parent
    monkeypatch.setenv("PATH", str(on_path))
    assert locate(ETCD, tmp_path / "cache", assets) == assets / "etcd"
    assert locate(ETCD, tmp_path / "cache", None) == on_path / "etcd"
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert locate(ETCD, tmp_path / "cache", None) is None
    cached = _exe(build_dir(tmp_path / "cache", "etcd") / "etcd")
    assert locate(ETCD, tmp_path / "cache", None) == cached


def test_cache_folder_changes_with_the_pins(tmp_path: Path) -> None:
    """A different go.sum gives a different cache folder, so versions never mix."""
    tools = tmp_path / "tools"
    (tools / "etcd").mkdir(parents=True)
    (tools / "etcd" / "go.mod").write_text("require go.etcd.io/etcd/server/v3 v3.5.1\n")
    (tools / "etcd" / "go.sum").write_text("a\n")
    first = build_dir(tmp_path, "etcd", tools)
    (tools / "etcd" / "go.sum").write_text("b\n")
    second = build_dir(tmp_path, "etcd", tools)
    assert first != second
    assert first.name.startswith("etcd-v3.5.1-")


def test_cluster_state_stays_in_the_cache(tmp_path: Path) -> None:
    """Kubeconfig and state live under the cache folder, and ports do not overlap."""
    config = ClusterConfig(cache_dir=tmp_path, port=16443)
    assert config.kubeconfig == tmp_path / "cluster" / "kubeconfig"
    assert config.port not in config.etcd_ports


def test_wait_for_returns_the_value_or_times_out() -> None:
    """wait_for returns the first truthy value, and fails with the last error chained."""
    values = iter([0, None, 7])
    assert wait_for(lambda: next(values), timeout=5, interval=0) == 7

    def broken() -> bool:
        raise KeyError("missing")

    with pytest.raises(WaitTimeoutError) as caught:
        wait_for(broken, timeout=0.05, interval=0.01, message="thing")
    assert isinstance(caught.value.__cause__, KeyError)


def test_run_async_fails_on_a_leaked_task() -> None:
    """An async test body that leaves a task running fails."""

    async def leaky() -> None:
        asyncio.get_running_loop().create_task(asyncio.sleep(10), name="forgotten")

    with pytest.raises(LeakedTasksError, match="forgotten"):
        run_async(leaky())


def test_run_async_returns_the_result_when_clean() -> None:
    """A body that awaits what it starts passes and returns its value."""

    async def clean() -> int:
        await asyncio.create_task(asyncio.sleep(0))
        return 5

    assert run_async(clean()) == 5
