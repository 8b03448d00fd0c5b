"""Container images for the real node, built without Docker and without a registry.

1. A base image is made from Debian's packages with `mmdebstrap` (Debian's Python 3.11, pip
   installed the way the public `python:*-slim` images have it, so Dockerfiles that
   `pip install` or `pip uninstall pip` behave the same), and one with Node.js for the
   JavaScript tool. The downloaded packages are kept, so a rebuild downloads nothing.
2. Every Dockerfile of the project (the operator's and each tool's) is built with `buildah`
   on that base: they all take `ARG BASE`, whose default is the public image, so people
   elsewhere build them as usual; here `--build-arg BASE=` names the local base.
3. Each image is saved as an archive under `<cache>/images/archives/`, which the real node's
   containerd imports (`slipway dev cluster up --real-node`); pods use them with
   `imagePullPolicy: IfNotPresent` (or `Never`), so nothing is ever pulled.

Caching: a base is rebuilt only when its recipe (suite, packages, hooks) changes; an image
only when its Dockerfile, the files its COPY lines name, its base or its build arguments
change (a digest of them is kept in the image's `slipway.dev/source-digest` label); an
archive only when its image changed. `python -m slipway.devcluster.images` (`make images`)
builds what is missing or stale and imports it into a running real node.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[3]
TAG = "dev"
SUITE = "bookworm"
#: Label holding the digest an image was built from.
DIGEST_LABEL = "slipway.dev/source-digest"


class ImageError(RuntimeError):
    """An image could not be built; the message has the failing command and its output."""


@dataclass(frozen=True)
class Base:
    """A base image made with mmdebstrap from Debian's packages."""

    name: str
    packages: tuple[str, ...]
    #: Shell commands run in the new root (`chroot`), after the packages are installed.
    setup: tuple[str, ...] = ()
    env: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"localhost/{self.name}:{SUITE}"

    def recipe(self) -> str:
        return json.dumps([SUITE, self.packages, self.setup, self.env, _CLEANUP])


#: What `python:3.11-slim` offers that Debian's python3 does not by itself: `python`, and pip
#: (with setuptools and wheel) installed by pip into /usr/local, so images may pip-install
#: into the system Python and uninstall pip again. The wheels are Debian's own.
_PIP = (
    'pip=$(ls /usr/share/python-wheels/pip-*.whl) && python3 "$pip/pip" install '
    "--no-cache-dir --no-index --break-system-packages --disable-pip-version-check "
    "/usr/share/python-wheels/pip-*.whl /usr/share/python-wheels/setuptools-*.whl "
    "/usr/share/python-wheels/wheel-*.whl"
)
#: pip and npm trust the system's CA bundle (the one ca-certificates keeps), as Debian's own
#: pip does; while images build, that bundle is this machine's (Builder._trust_volumes).
_TRUST_PIP = "printf '[global]\\ncert = /etc/ssl/certs/ca-certificates.crt\\n' > /etc/pip.conf"
_TRUST_NPM = "echo cafile=/etc/ssl/certs/ca-certificates.crt > /etc/npmrc"
_CLEANUP = (
    "rm -f /usr/lib/python3.*/EXTERNALLY-MANAGED",
    "rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/share/info/*"
    " /usr/share/locale/* /var/cache/debconf/*-old /var/log/*.log",
    "find / -xdev -name __pycache__ -type d -prune -exec rm -rf {} +",
)

BASES: dict[str, Base] = {
    "python": Base(
        "slipway-base",
        (
            "python3",
            "python-is-python3",
            "python3-pip-whl",
            "python3-setuptools-whl",
            "python3-wheel-whl",
            "ca-certificates",
        ),
        setup=(_PIP, _TRUST_PIP),
        env=("LANG=C.UTF-8",),
    ),
    "node": Base(
        "slipway-base-node",
        ("nodejs", "npm", "ca-certificates"),
        setup=(_TRUST_NPM,),
        env=("LANG=C.UTF-8",),
    ),
}


@dataclass(frozen=True)
class Image:
    """One of the project's Dockerfiles and the image it builds."""

    name: str
    dockerfile: str  # relative to the repository root
    context: str  # relative to the repository root
    base: str = "python"  # key of BASES

    @property
    def ref(self) -> str:
        """The name pods use (kubelet and containerd complete it the same way)."""
        return f"{self.name}:{TAG}"


IMAGES: tuple[Image, ...] = (
    Image("slipway", "Dockerfile", "."),
    Image("checknumber", "tasks/checknumber/Dockerfile", "tasks/checknumber"),
    Image("checknumber-job", "tasks/checknumber-job/Dockerfile", "tasks/checknumber-job"),
    Image("checknumber-js", "tasks/checknumber-js/Dockerfile", "tasks/checknumber-js", "node"),
    Image("extract-metadata", "tasks/extract-metadata/Dockerfile", "tasks"),
    Image("geolookup", "tasks/geolookup/Dockerfile", "tasks"),
    Image("author-search", "tasks/author-search/Dockerfile", "tasks"),
)

#: The pods' sandbox image: the `pause` binary built with the kubelet, alone on scratch.
PAUSE = "slipway-pause"


def pause_ref() -> str:
    return f"{PAUSE}:{TAG}"


# ---------------------------------------------------------------------- Dockerfile sources
def dockerfile_sources(text: str) -> list[str]:
    """The context paths a Dockerfile's COPY and ADD instructions read (not those copied
    `--from` another stage or image), in order. Continuation lines are joined; JSON-form
    arguments are understood."""
    sources: list[str] = []
    for line in _instructions(text):
        keyword, _, rest = line.partition(" ")
        if keyword.upper() not in ("COPY", "ADD"):
            continue
        rest = rest.strip()
        if rest.startswith("["):
            args = list(json.loads(rest))
            options: list[str] = []
        else:
            words = shlex.split(rest)
            options = [w for w in words if w.startswith("--")]
            args = [w for w in words if not w.startswith("--")]
        if any(o.startswith("--from=") for o in options):
            continue
        sources.extend(args[:-1])
    return sources


def _instructions(text: str) -> Iterator[str]:
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        yield current + line
        current = ""
    if current:
        yield current


def source_digest(image: Image, base_id: str, root: Path = ROOT) -> str:
    """What an image is built from: its Dockerfile, every file its COPY lines name (with
    their paths and modes), the base image's id and the image's name."""
    digest = hashlib.sha256()
    dockerfile = root / image.dockerfile
    text = dockerfile.read_text()
    digest.update(f"{image.name}\0{base_id}\0{text}\0".encode())
    context = root / image.context
    for source in dockerfile_sources(text):
        for path in _files(context / source):
            relative = path.relative_to(context)
            digest.update(f"{relative}\0{path.stat().st_mode:o}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:24]


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ImageError(f"a COPY source does not exist: {path}")
    found: list[Path] = []
    for folder, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", "node_modules", ".git"))
        found.extend(Path(folder) / name for name in sorted(files) if not name.endswith(".pyc"))
    return found


# ---------------------------------------------------------------------- building
@dataclass(frozen=True)
class Builder:
    """buildah with its own storage under `<cache>/images/`."""

    cache_dir: Path

    @property
    def home(self) -> Path:
        return self.cache_dir / "images"

    @property
    def archives(self) -> Path:
        return self.home / "archives"

    def archive(self, name: str) -> Path:
        return self.archives / f"{name}.tar"

    def buildah(self, *args: str, capture: bool = True) -> str:
        tool = shutil.which("buildah")
        if tool is None:
            raise ImageError("building images needs `buildah` (make images installs it)")
        command = [
            tool,
            f"--root={self.home / 'storage'}",
            f"--runroot={self.home / 'run'}",
            "--storage-driver=overlay",
            *args,
        ]
        env = {**os.environ, "BUILDAH_ISOLATION": "chroot", "STORAGE_DRIVER": "overlay"}
        result = subprocess.run(
            command,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
            text=True,
            check=False,
            env=env,
        )
        if result.returncode != 0:
            detail = (result.stderr or "")[-4000:] if capture else "(output above)"
            raise ImageError(f"`{shlex.join(command)}` failed:\n{detail}")
        return (result.stdout or "").strip()

    def inspect(self, ref: str) -> dict[str, Any] | None:
        try:
            text = self.buildah("inspect", "--type=image", ref)
        except ImageError:
            return None
        found: dict[str, Any] = json.loads(text)
        return found

    def image_id(self, ref: str) -> str | None:
        found = self.inspect(ref)
        return str(found["FromImageID"]) if found else None

    def label(self, ref: str, key: str) -> str | None:
        found = self.inspect(ref)
        if not found:
            return None
        config = found.get("OCIv1") or {}
        labels = (config.get("config") or {}).get("Labels") or {}
        value = labels.get(key)
        return str(value) if value is not None else None

    # ------------------------------------------------------------------ bases
    def ensure_base(self, base: Base) -> str:
        """The base image's id, made with mmdebstrap when missing or its recipe changed."""
        recipe = hashlib.sha256(base.recipe().encode()).hexdigest()[:24]
        if self.label(base.ref, DIGEST_LABEL) == recipe:
            return self.image_id(base.ref) or ""
        mmdebstrap = shutil.which("mmdebstrap")
        if mmdebstrap is None:
            raise ImageError("making the base image needs `mmdebstrap` (make images installs it)")
        started = time.monotonic()
        debs = self.home / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="base-", dir=self.home) as tmp:
            rootfs = Path(tmp) / "rootfs.tar"
            hooks = [f'chroot "$1" sh -ec {shlex.quote(cmd)}' for cmd in base.setup]
            command = [
                mmdebstrap,
                "--variant=minbase",
                "--mode=root",
                "--format=tar",
                '--aptopt=APT::Install-Recommends "false"',
                f"--include={','.join(base.packages)}",
                # Keep the downloaded packages between builds (and out of the image).
                "--skip=download/empty",
                "--skip=essential/unlink",
                f'--setup-hook=mkdir -p "$1"/var/cache/apt/archives && '
                f'cp -a {shlex.quote(str(debs))}/. "$1"/var/cache/apt/archives/',
                f'--customize-hook=cp -a "$1"/var/cache/apt/archives/. {shlex.quote(str(debs))}/',
                *[f"--customize-hook={hook}" for hook in hooks],
                *[f'--customize-hook=chroot "$1" sh -c {shlex.quote(c)}' for c in _CLEANUP],
                '--customize-hook=rm -rf "$1"/var/cache/apt/archives/*.deb',
                SUITE,
                str(rootfs),
            ]
            log.warning("making the base image %s with mmdebstrap", base.ref)
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise ImageError(f"`{shlex.join(command)}` failed:\n{result.stderr[-4000:]}")
            container = self.buildah("from", "--pull-never", "scratch")
            try:
                mount = self.buildah("mount", container)
                subprocess.run(["tar", "-C", mount, "-xpf", str(rootfs)], check=True)
                self.buildah("umount", container)
                config = [f"--env={e}" for e in base.env]
                self.buildah(
                    "config",
                    *config,
                    "--cmd=/bin/sh",
                    f"--label={DIGEST_LABEL}={recipe}",
                    container,
                )
                self.buildah("commit", "--rm", container, base.ref)
            except BaseException:
                self.buildah("rm", container)
                raise
        log.warning("made %s in %.0f s", base.ref, time.monotonic() - started)
        return self.image_id(base.ref) or ""

    # ------------------------------------------------------------------ images
    def ensure_image(self, image: Image, base_id: str) -> bool:
        """Build `image` unless it is up to date. Returns True when it was built."""
        digest = source_digest(image, base_id)
        if self.label(image.ref, DIGEST_LABEL) == digest:
            return False
        started = time.monotonic()
        log.warning("building %s from %s", image.ref, image.dockerfile)
        self.buildah(
            "bud",
            "--layers",
            "--network=host",
            "--pull-never",
            *self._trust_volumes(),
            f"--build-arg=BASE={BASES[image.base].ref}",
            f"--label={DIGEST_LABEL}={digest}",
            f"--build-arg=SOURCE_DIGEST={digest}",  # see the root Dockerfile
            f"--file={ROOT / image.dockerfile}",
            f"--tag={image.ref}",
            str(ROOT / image.context),
        )
        log.warning("built %s in %.0f s", image.ref, time.monotonic() - started)
        return True

    def _trust_volumes(self) -> list[str]:
        """While RUN steps run (never in the image): this machine's CA bundle in place of the
        base's (which pip and npm use), so package downloads work wherever this machine's
        own do, behind a proxy that re-signs TLS too."""
        bundle = Path(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
        if not bundle.is_file():
            return []
        return [f"--volume={bundle.resolve()}:/etc/ssl/certs/ca-certificates.crt:ro"]

    def ensure_pause(self, pause_binary: Path) -> None:
        digest = hashlib.sha256(pause_binary.read_bytes()).hexdigest()[:24]
        if self.label(pause_ref(), DIGEST_LABEL) == digest:
            return
        container = self.buildah("from", "--pull-never", "scratch")
        try:
            self.buildah("copy", "--chmod=0755", container, str(pause_binary), "/pause")
            self.buildah(
                "config",
                '--entrypoint=["/pause"]',
                "--user=65535:65535",
                f"--label={DIGEST_LABEL}={digest}",
                container,
            )
            self.buildah("commit", "--rm", container, pause_ref())
        except BaseException:
            self.buildah("rm", container)
            raise

    def export(self, ref: str, name: str) -> Path:
        """The image saved as a docker-archive for containerd, rewritten only when the
        image changed (its id is kept next to the archive)."""
        self.archives.mkdir(parents=True, exist_ok=True)
        archive = self.archive(name)
        stamp = archive.with_suffix(".id")
        image_id = self.image_id(ref) or ""
        if archive.is_file() and stamp.is_file() and stamp.read_text().strip() == image_id:
            return archive
        partial = archive.with_suffix(".tmp")
        partial.unlink(missing_ok=True)
        self.buildah("push", "--quiet", ref, f"docker-archive:{partial}:{ref.split('/')[-1]}")
        partial.replace(archive)
        stamp.write_text(image_id + "\n")
        return archive

    def size(self, name: str) -> int:
        """The size in bytes of the image's archive: its layers, uncompressed."""
        return self.archive(name).stat().st_size


def build_all(
    cache_dir: Path, names: list[str] | None = None, pause_binary: Path | None = None
) -> dict[str, Path]:
    """Build (or find up to date) the bases, the images named (all by default) and the pause
    image, and return each image's archive. Serialised by a lock under `<cache>/images/`."""
    builder = Builder(cache_dir)
    builder.home.mkdir(parents=True, exist_ok=True)
    chosen = [i for i in IMAGES if names is None or i.name in names]
    unknown = set(names or ()) - {i.name for i in IMAGES}
    if unknown:
        raise ImageError(f"no such image: {', '.join(sorted(unknown))}")
    archives: dict[str, Path] = {}
    with open(builder.home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        base_ids = {key: builder.ensure_base(BASES[key]) for key in {i.base for i in chosen}}
        for image in chosen:
            builder.ensure_image(image, base_ids[image.base])
            archives[image.ref] = builder.export(image.ref, image.name)
        if pause_binary is not None:
            builder.ensure_pause(pause_binary)
            archives[pause_ref()] = builder.export(pause_ref(), PAUSE)
    return archives


def main(argv: list[str] | None = None) -> int:
    """`python -m slipway.devcluster.images [NAME...]`: build the images, print their sizes,
    and import them into the real node when it runs."""
    from slipway.devcluster.binaries import NODE_COMPONENTS, locate
    from slipway.devcluster.cluster import ClusterConfig
    from slipway.devcluster.node import RealNode
    from slipway.settings import Settings

    parser = argparse.ArgumentParser(prog="python -m slipway.devcluster.images")
    parser.add_argument("names", nargs="*", help="images to build (default: all)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    settings = Settings.from_env()
    # The pause image needs the binary built with the kubelet: made here when it is there
    # already, else when the node starts (so this never waits for a Go build).
    pause = next(c for c in NODE_COMPONENTS if c.name == "pause")
    try:
        archives = build_all(
            settings.cache_dir, args.names or None, locate(pause, settings.cache_dir)
        )
    except (ImageError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for ref, archive in archives.items():
        print(f"{ref:28} {archive.stat().st_size / 1e6:8.1f} MB  {archive}")
    node = RealNode(ClusterConfig(cache_dir=settings.cache_dir, port=settings.cluster_port))
    if node.containerd_running():
        imported = node.import_images()
        print(f"imported into the real node: {', '.join(imported) or 'nothing new'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
