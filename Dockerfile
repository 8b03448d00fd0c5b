# syntax=docker/dockerfile:1
# The Slipway operator's image: `make image` (IMAGE=registry/slipway:tag to name it).
#
# Stage 1 builds wheels: Slipway's own, and every dependency's (all of them ship manylinux
# wheels, so nothing is compiled). Stage 2 installs only those wheels, offline, on a slim
# Python, removes pip, and runs as a numeric non-root user, so Kubernetes can check
# `runAsNonRoot` without reading /etc/passwd (manifests/base/deployment.yaml uses 65532).
#
# BASE is any image with Python 3.11 and pip: the public slim image by default; `make images`
# builds on a base made locally from Debian's packages instead (docs/install.md).
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS wheels
WORKDIR /src
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip wheel --wheel-dir /wheels .

FROM ${BASE}
LABEL org.opencontainers.image.title="slipway" \
      org.opencontainers.image.description="Slipway operator: kopf handlers and the event gateway" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# A layer cache that does not look into a RUN's bind mounts (buildah's) would keep an older
# operator here: `slipway.devcluster.images` passes the sources' digest, so a change is a new layer.
ARG SOURCE_DIGEST=none
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels slipway \
    && pip uninstall --yes pip setuptools wheel
# A name for the UID: kopf names the operator's identity after the user (getpass.getuser), which
# fails for a UID that /etc/passwd does not know.
RUN echo "slipway:x:65532:65532:Slipway operator:/nonexistent:/usr/sbin/nologin" >> /etc/passwd \
    && echo "slipway:x:65532:" >> /etc/group
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["slipway", "run"]
