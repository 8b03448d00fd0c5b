"""The committed CRDs and reference doc are what the models generate (`make crds`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from slipway.api.crds import generated_files, main

ROOT = Path(__file__).resolve().parents[2]
FILES = generated_files()


@pytest.mark.parametrize("relative", sorted(FILES))
def test_committed_file_is_current(relative: str) -> None:
    """crds/*.yaml and docs/reference.md equal what the models generate; run `make crds`."""
    path = ROOT / relative
    assert path.exists(), f"{relative} is missing: run `make crds`"
    assert path.read_text(encoding="utf-8") == FILES[relative], (
        f"{relative} is stale: run `make crds` and commit the result"
    )


def test_no_stray_crd_files() -> None:
    """crds/ holds exactly the generated CRDs (a removed kind leaves no file behind)."""
    committed = {f"crds/{p.name}" for p in (ROOT / "crds").glob("*.yaml")}
    assert committed == {name for name in FILES if name.startswith("crds/")}


def test_generation_is_reproducible(tmp_path: Path) -> None:
    """Writing twice gives the same files; --check then passes, and fails on a stale file."""
    assert main([str(tmp_path)]) == 0
    first = {p: p.read_text() for p in tmp_path.rglob("*") if p.is_file()}
    assert main([str(tmp_path), "--check"]) == 0
    assert first == {p: p.read_text() for p in tmp_path.rglob("*") if p.is_file()}
    (tmp_path / "docs" / "reference.md").write_text("stale")
    assert main([str(tmp_path), "--check"]) == 1
