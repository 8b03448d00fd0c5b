"""Keys and certificates of the local control plane, made with the `openssl` command.

A CA signs the API server's serving certificate (so clients verify it, and pods get the CA
in `kube-root-ca.crt`); an RSA key pair signs and verifies service-account tokens (so
TokenRequest, TokenReview and projected tokens work). Files are made once and reused.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

#: Names the API server answers to, inside and outside the cluster.
SERVING_NAMES = (
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
    "IP:127.0.0.1",
    "IP:10.96.0.1",
)


@dataclass(frozen=True)
class Pki:
    """Paths of every key and certificate in one folder."""

    root: Path

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def serving_cert(self) -> Path:
        return self.root / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        return self.root / "apiserver.key"

    @property
    def sa_key(self) -> Path:
        return self.root / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.root / "sa.pub"


def _openssl(*args: str, cwd: Path) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise RuntimeError("the local control plane needs the `openssl` command to make its keys")
    subprocess.run([exe, *args], cwd=cwd, check=True, capture_output=True)


def ensure_pki(root: Path) -> Pki:
    """Make the CA, serving certificate and service-account keys in `root` unless they are
    all there already. Idempotent."""
    pki = Pki(root)
    files = (pki.ca_cert, pki.ca_key, pki.serving_cert, pki.serving_key, pki.sa_key, pki.sa_pub)
    if all(f.is_file() for f in files):
        return pki
    root.mkdir(parents=True, exist_ok=True)
    days = "3650"
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        days,
        "-subj",
        "/CN=slipway-local-ca",
        cwd=root,
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "apiserver.key",
        "-out",
        "apiserver.csr",
        "-subj",
        "/CN=kube-apiserver",
        cwd=root,
    )
    (root / "apiserver.ext").write_text(
        "subjectAltName=" + ",".join(SERVING_NAMES) + "\n"
        "extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n"
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        "apiserver.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "apiserver.crt",
        "-days",
        days,
        "-extfile",
        "apiserver.ext",
        cwd=root,
    )
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=root)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=root)
    for f in root.iterdir():
        f.chmod(0o600)
    return pki
