"""Find or build the control-plane binaries.

Each binary is looked up, in order, in `KUBEBUILDER_ASSETS`, on `PATH`, and in the cache;
when it is in none of them, the Go module in `tools/cluster/<module>/` that pins it is built
once into the cache (`<cache>/bin/<module>-<version>-<digest>/`). The digest covers the
module's go.mod and go.sum, so changing a pin builds into a new folder and never mixes
versions. Builds are serialised by a lock file, so two processes never build the same thing.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Component:
    """One binary of the control plane and the Go package it is built from."""

    name: str
    module: str  # folder under tools/cluster/
    package: str


COMPONENTS: tuple[Component, ...] = (
    Component("etcd", "etcd", "."),
    Component("kube-apiserver", "kubernetes", "k8s.io/kubernetes/cmd/kube-apiserver"),
    Component(
        "kube-controller-manager", "kubernetes", "k8s.io/kubernetes/cmd/kube-controller-manager"
    ),
    Component("kube-scheduler", "kubernetes", "k8s.io/kubernetes/cmd/kube-scheduler"),
    Component("kwok", "kwok", "sigs.k8s.io/kwok/cmd/kwok"),
)

#: The real node's binaries (`slipway dev cluster up --real-node`), built from the same
#: k8s.io/kubernetes release as the control plane but pinned in a module of their own
#: (`tools/cluster/kubelet/`), so adding them never changes the control plane's cache folder.
NODE_COMPONENTS: tuple[Component, ...] = (
    Component("kubelet", "kubelet", "k8s.io/kubernetes/cmd/kubelet"),
    # Services' virtual IPs on the real node (iptables rules).
    Component("kube-proxy", "kubelet", "k8s.io/kubernetes/cmd/kube-proxy"),
    # The pods' sandbox process: no registry here to pull the usual pause image from.
    Component("pause", "kubelet", "slipway.dev/tools/cluster/kubelet/pause"),
)

#: Not part of the control plane: the metrics server the evaluation provider's cluster tests
#: query. Its module lives in `tools/prometheus/`; it is built on first use, not by `up`.
PROMETHEUS = Component(
    "prometheus", "prometheus", "github.com/prometheus/prometheus/cmd/prometheus"
)

#: Not part of the control plane either: Argo CD's repo-server and application-controller (one
#: binary, named by how it is called), for `slipway dev argocd` and the GitOps tests. Its module
#: in `tools/argocd/` names a newer Go toolchain than most machines have; Go fetches it.
ARGOCD = Component("argocd", "argocd", ".")

_PINNED = {
    "etcd": "go.etcd.io/etcd/server/v3",
    "kubernetes": "k8s.io/kubernetes",
    "kwok": "sigs.k8s.io/kwok",
    "kubelet": "k8s.io/kubernetes",
    "prometheus": "github.com/prometheus/prometheus",
    "argocd": "github.com/argoproj/argo-cd/v3",
}

#: Go build tags per module. Prometheus without its cloud service discoveries (static and
#: file-based scrape configs remain) compiles in a fraction of the time of a full build.
_BUILD_TAGS = {"prometheus": "remove_all_sd"}

#: GOTOOLCHAIN per module. `auto`: the installed Go when it is new enough for the module's go.mod,
#: else the toolchain its `toolchain` line names, from the Go module proxy (cached after that).
_TOOLCHAIN = {"argocd": "auto"}

#: A module's own Go files that its binaries depend on (the digest covers them too).
_OWN_SOURCES = {"argocd": ("main.go",), "kubelet": ("pause/main.go",)}

#: Files of the pinned module kept beside its binary in the cache (same version, no second
#: download later): Argo CD's Application and AppProject CRDs, which `slipway dev argocd up`
#: installs.
ARGOCD_CRDS = ("application-crd.yaml", "appproject-crd.yaml")
_MODULE_FILES = {"argocd": tuple(f"manifests/crds/{name}" for name in ARGOCD_CRDS)}


class BinaryError(RuntimeError):
    """A binary could not be found or built; the message says what to do."""


def tools_dir() -> Path:
    """The `tools/cluster` folder of the source checkout this package runs from."""
    return Path(__file__).resolve().parents[3] / "tools" / "cluster"


def ensure_prometheus(cache_dir: Path) -> Path:
    """The Prometheus binary: on PATH, else in the cache, else built once from the module in
    `tools/prometheus/` (same rules, lock and cache layout as the control plane's binaries).
    Raises BinaryError when it can be neither found nor built."""
    return _ensure_tool(cache_dir, PROMETHEUS)


def ensure_argocd(cache_dir: Path) -> Path:
    """The Argo CD binary (repo-server and application-controller): in the cache, else built
    once from the module in `tools/argocd/` (same lock and cache layout). Not looked up on PATH:
    an `argocd` there is usually Argo CD's CLI, which cannot run the components. Raises
    BinaryError when it cannot be built."""
    return _ensure_tool(cache_dir, ARGOCD, look_on_path=False)


def _ensure_tool(cache_dir: Path, component: Component, look_on_path: bool = True) -> Path:
    on_path = shutil.which(component.name) if look_on_path else None
    if on_path:
        return Path(on_path)
    tools = tools_dir().parent
    if (tools / component.module).is_dir():
        target = build_dir(cache_dir, component.module, tools)
        files = [component.name, *_cached_files(component.module)]
        if all((target / name).is_file() for name in files):
            return target / component.name
    return _build_module(cache_dir, component.module, [component], tools) / component.name


def _cached_files(module: str) -> list[str]:
    return [Path(path).name for path in _MODULE_FILES.get(module, ())]


def module_version(module_dir: Path, module: str) -> str:
    """The version go.mod pins for the module that gives `module_dir` its name."""
    text = (module_dir / "go.mod").read_text()
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(_PINNED[module])}\s+(v\S+)", text, re.M)
    if not match:
        raise BinaryError(f"{module_dir}/go.mod does not pin {_PINNED[module]}")
    return match.group(1)


def build_dir(cache_dir: Path, module: str, tools: Path | None = None) -> Path:
    """The cache folder for `module`'s binaries at the pins currently in the repo."""
    module_dir = (tools or tools_dir()) / module
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", *_OWN_SOURCES.get(module, ())):
        digest.update((module_dir / name).read_bytes())
    digest.update(_BUILD_TAGS.get(module, "").encode())  # other tags, another binary
    version = module_version(module_dir, module)
    return cache_dir / "bin" / f"{module}-{version}-{digest.hexdigest()[:12]}"


def locate(
    component: Component, cache_dir: Path, kubebuilder_assets: Path | None = None
) -> Path | None:
    """The binary to use for `component`, or None when it must be built."""
    if kubebuilder_assets and (kubebuilder_assets / component.name).is_file():
        return kubebuilder_assets / component.name
    on_path = shutil.which(component.name)
    if on_path:
        return Path(on_path)
    if tools_dir().is_dir():
        cached = build_dir(cache_dir, component.module) / component.name
        if cached.is_file():
            return cached
    return None


def ensure_binaries(
    cache_dir: Path,
    kubebuilder_assets: Path | None = None,
    components: tuple[Component, ...] = COMPONENTS,
) -> dict[str, Path]:
    """Every component's binary (the control plane's unless `components` says otherwise),
    building the missing ones. Idempotent; safe to call concurrently (builds hold a lock).
    Raises BinaryError when Go is missing or a build fails, with the build's output in the
    message."""
    found: dict[str, Path] = {}
    missing: dict[str, list[Component]] = {}
    for component in components:
        path = locate(component, cache_dir, kubebuilder_assets)
        if path is None:
            missing.setdefault(component.module, []).append(component)
        else:
            found[component.name] = path
    for module, needed in missing.items():
        target = _build_module(cache_dir, module, needed)
        for component in needed:
            found[component.name] = target / component.name
    return found


def _build_module(
    cache_dir: Path, module: str, components: list[Component], tools: Path | None = None
) -> Path:
    tools = tools or tools_dir()
    if not (tools / module).is_dir():
        raise BinaryError(
            f"{components[0].name} is not on PATH, in KUBEBUILDER_ASSETS or in the cache, and "
            f"building it needs the source checkout's {tools / module} folder, which is missing"
        )
    go = shutil.which("go")
    if go is None:
        raise BinaryError("building the control plane needs the Go toolchain: `go` is not on PATH")
    target = build_dir(cache_dir, module, tools)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{module}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        wanted = [c.name for c in components] + _cached_files(module)
        if all((target / name).is_file() for name in wanted):
            return target  # another process built it while we waited
        staging = Path(tempfile.mkdtemp(prefix=f".{module}-", dir=target.parent))
        cmd = [go, "build", "-trimpath", "-ldflags=-s -w", "-o", str(staging) + os.sep]
        if module in _BUILD_TAGS:
            cmd[2:2] = ["-tags", _BUILD_TAGS[module]]
        cmd += [c.package for c in components]
        log.warning(
            "building %s (once; cached in %s)", ", ".join(c.name for c in components), target
        )
        started = time.monotonic()
        env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly -buildvcs=false"}
        if module in _TOOLCHAIN:
            env["GOTOOLCHAIN"] = _TOOLCHAIN[module]
        result = subprocess.run(
            cmd, cwd=tools / module, env=env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise BinaryError(f"`{' '.join(cmd)}` in {tools / module} failed:\n{result.stderr}")
        if module in _MODULE_FILES:
            _copy_module_files(go, module, tools / module, env, staging)
        if target.is_dir():  # other components of this module are there already: keep them
            for built in staging.iterdir():
                built.replace(target / built.name)
            staging.rmdir()
        else:
            staging.rename(target)
        log.warning("built %s in %.0f s", module, time.monotonic() - started)
        return target


def _copy_module_files(
    go: str, module: str, module_dir: Path, env: dict[str, str], staging: Path
) -> None:
    """Copy `_MODULE_FILES[module]` from the pinned module's source (in Go's module cache,
    where the build just put it) into the staging folder."""
    result = subprocess.run(
        [go, "list", "-m", "-f", "{{.Dir}}", _PINNED[module]],
        cwd=module_dir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    source = Path(result.stdout.strip())
    if result.returncode != 0 or not source.is_dir():
        shutil.rmtree(staging, ignore_errors=True)
        raise BinaryError(f"cannot find the source of {_PINNED[module]}:\n{result.stderr}")
    for path in _MODULE_FILES[module]:
        shutil.copyfile(source / path, staging / Path(path).name)
