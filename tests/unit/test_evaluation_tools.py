"""Where the cluster tests' Prometheus comes from: the pinned module and the lookup order."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from slipway.devcluster.binaries import build_dir, ensure_prometheus, module_version, tools_dir

TOOLS = tools_dir().parent


def test_prometheus_is_pinned_with_its_checksums() -> None:
    """tools/prometheus pins one Prometheus release (v0.3xx.y = 3.xx.y) and commits go.sum."""
    version = module_version(TOOLS / "prometheus", "prometheus")
    assert re.fullmatch(r"v0\.3[0-9]{2}\.[0-9]+", version)
    assert (
        f"github.com/prometheus/prometheus {version} " in (TOOLS / "prometheus/go.sum").read_text()
    )


def test_the_cached_build_is_used_before_building(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With nothing on PATH, the binary in the cache folder of the current pins is used."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    target = build_dir(tmp_path, "prometheus", TOOLS)
    assert re.fullmatch(r"prometheus-v0\.3[0-9]{2}\.[0-9]+-[0-9a-f]{12}", target.name)
    target.mkdir(parents=True)
    (target / "prometheus").write_text("#!/bin/sh\n")
    assert ensure_prometheus(tmp_path) == target / "prometheus"


def test_a_prometheus_on_path_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A prometheus on PATH (a distribution's package, say) is used as it is."""
    on_path = tmp_path / "bin" / "prometheus"
    on_path.parent.mkdir()
    on_path.write_text("#!/bin/sh\n")
    on_path.chmod(0o755)
    monkeypatch.setenv("PATH", str(on_path.parent))
    assert ensure_prometheus(tmp_path / "cache") == on_path
