"""The real node's pure parts: which files an image is built from, its cache key, the
Dockerfiles' base argument, the node's generated configuration, the kubelet's pin."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import yaml

from slipway.devcluster import binaries
from slipway.devcluster.binaries import COMPONENTS, NODE_COMPONENTS, build_dir, module_version
from slipway.devcluster.cluster import ClusterConfig
from slipway.devcluster.images import (
    BASES,
    IMAGES,
    ROOT,
    Image,
    dockerfile_sources,
    source_digest,
)
from slipway.devcluster.node import REAL_NODE_TOLERATION, TAINT_KEY, RealNode

DOCKERFILE = """\
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE} AS wheels
# a comment
COPY pyproject.toml README.md ./
COPY --chown=1:1 operator \\
     ./operator
COPY ["tool.py", "/app/tool.py"]
COPY --from=wheels /wheels /wheels
ADD extra.tar /opt/
RUN pip install .
"""


def test_dockerfile_sources_are_the_context_files_copied() -> None:
    """COPY/ADD sources from the context, continuation lines joined, JSON form read; what is
    copied from another stage is not the context's."""
    assert dockerfile_sources(DOCKERFILE) == [
        "pyproject.toml",
        "README.md",
        "operator",
        "tool.py",
        "extra.tar",
    ]


def test_source_digest_follows_the_copied_files_only(tmp_path: Path) -> None:
    """Changing a copied file or the base changes the digest; another file does not."""
    (tmp_path / "Dockerfile").write_text("FROM ${BASE}\nCOPY src /app\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("a = 1\n")
    (tmp_path / "unrelated.txt").write_text("x")
    image = Image("x", "Dockerfile", ".")
    first = source_digest(image, "base-1", tmp_path)
    (tmp_path / "unrelated.txt").write_text("y")
    assert source_digest(image, "base-1", tmp_path) == first
    assert source_digest(image, "base-2", tmp_path) != first
    (tmp_path / "src" / "a.py").write_text("a = 2\n")
    assert source_digest(image, "base-1", tmp_path) != first


def test_every_dockerfile_is_built_and_takes_a_base() -> None:
    """Each Dockerfile of the repository is one of IMAGES, and each takes `ARG BASE` with a
    public default before its first FROM, used by every FROM (so `make images` can give the
    local base and others build as usual)."""
    found = {str(p.relative_to(ROOT)) for p in ROOT.glob("Dockerfile")}
    found |= {str(p.relative_to(ROOT)) for p in ROOT.glob("tasks/*/Dockerfile")}
    assert found == {image.dockerfile for image in IMAGES}
    for image in IMAGES:
        text = (ROOT / image.dockerfile).read_text()
        assert image.base in BASES
        default = re.search(r"^ARG BASE=(\S+)$", text, re.MULTILINE)
        assert default, image.dockerfile
        assert "/" not in default.group(1).split(":")[0]  # a public image, no registry named
        froms = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
        assert froms, image.dockerfile
        assert all(f == "${BASE}" for f in froms), image.dockerfile
        assert text.index("ARG BASE=") < text.index("FROM ")
        for source in dockerfile_sources(text):
            assert (ROOT / image.context / source).exists(), (image.dockerfile, source)


def test_the_kubelet_is_built_from_the_control_planes_kubernetes_release() -> None:
    """tools/cluster/kubelet pins the same k8s.io/kubernetes (and staging modules) as the
    control plane, in a module of its own (its own cache folder)."""
    tools = binaries.tools_dir()
    kubelet = tools / "kubelet"
    assert module_version(kubelet, "kubelet") == module_version(tools / "kubernetes", "kubernetes")
    replaces = {
        (tools / m / "go.mod").read_text().split("replace (")[1] for m in ("kubelet", "kubernetes")
    }
    assert len(replaces) == 1
    assert {c.module for c in NODE_COMPONENTS} == {"kubelet"}
    assert not {c.module for c in COMPONENTS} & {"kubelet"}
    assert build_dir(Path("/c"), "kubelet") != build_dir(Path("/c"), "kubernetes")


def test_node_configuration_stays_in_the_cache_and_off_the_system(tmp_path: Path) -> None:
    """containerd and the kubelet get their own socket, folders, ports and cgroup root,
    derived from the control plane's port; nothing under /var/lib or /run."""
    node = RealNode(ClusterConfig(cache_dir=tmp_path, port=17000))
    node.home.mkdir(parents=True)
    containerd = tomllib.loads(node._write_containerd_config().read_text())
    for key in ("root", "state"):
        assert containerd[key].startswith(str(tmp_path))
    assert containerd["grpc"]["address"] == str(node.socket)
    cri = containerd["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["sandbox_image"] == "slipway-pause:dev"
    assert cri["netns_mounts_under_state_dir"] is True
    assert cri["cni"]["conf_dir"].startswith(str(tmp_path))
    (node.home / "cni").mkdir()
    node._write_cni_config()
    network = json.loads((node.home / "cni" / "10-slipway.conflist").read_text())
    [bridge] = network["plugins"]
    assert bridge["bridge"] == node.bridge == "slw17000"
    assert bridge["ipam"]["dataDir"].startswith(str(tmp_path))
    args = node._kubelet_args()
    assert f"--root-dir={node.home / 'kubelet'}" in args
    kubelet = yaml.safe_load((node.home / "kubelet.yaml").read_text())
    assert kubelet["cgroupRoot"] == "/slipway-17000"
    assert kubelet["podLogsDir"].startswith(str(tmp_path))
    assert kubelet["containerRuntimeEndpoint"] == f"unix://{node.socket}"
    assert {kubelet["port"], kubelet["healthzPort"]}.isdisjoint({17000, 17000 - 64, 17000 - 63})
    [taint] = kubelet["registerWithTaints"]
    assert taint["key"] == TAINT_KEY == REAL_NODE_TOLERATION["key"]
    assert (taint["effect"], taint["value"]) == (
        REAL_NODE_TOLERATION["effect"],
        REAL_NODE_TOLERATION["value"],
    )
