"""`slipway dev …`: developer tools (the local control plane, no Docker needed)."""

from __future__ import annotations

import time

import click

from slipway.cli import render
from slipway.cli.common import FAILED, OK, CliError, output_option


@click.group()
def dev() -> None:
    """Developer tools."""


@dev.command()
@click.argument("action", type=click.Choice(["up", "down", "status", "env", "build"]))
@click.option(
    "--real-node",
    is_flag=True,
    help="up: also start a real node (containerd, kubelet, kube-proxy) for pods that ask for "
    "it; build: also build its binaries",
)
@output_option
@click.pass_context
def cluster(ctx: click.Context, action: str, real_node: bool, output: str) -> int:
    """The local control plane. up: start or reuse; down: stop all; status; env: print
    `export KUBECONFIG=…`; build: only find or build the binaries (and the Prometheus the
    tests use)."""
    from slipway.devcluster.binaries import (
        NODE_COMPONENTS,
        BinaryError,
        ensure_binaries,
        ensure_prometheus,
    )
    from slipway.devcluster.cluster import ClusterConfig, ClusterError, LocalCluster
    from slipway.devcluster.node import PROCESSES as NODE_PROCESSES
    from slipway.devcluster.node import NodeError

    settings = ctx.obj.settings()
    config = ClusterConfig(
        cache_dir=settings.cache_dir,
        port=settings.cluster_port,
        kubebuilder_assets=settings.kubebuilder_assets,
    )
    local = LocalCluster(config)
    document: dict[str, object] = {"kubeconfig": str(config.kubeconfig)}
    lines: list[str] = []
    code = OK
    try:
        if action == "build":
            found = {
                name: str(path)
                for name, path in ensure_binaries(
                    config.cache_dir, config.kubebuilder_assets
                ).items()
            }
            # Not part of the control plane: the real Prometheus the tests query.
            found["prometheus"] = str(ensure_prometheus(config.cache_dir))
            if real_node:  # the kubelet, kube-proxy and pause of the real node too
                for name, path in ensure_binaries(config.cache_dir, None, NODE_COMPONENTS).items():
                    found[name] = str(path)
            document["binaries"] = found
            lines = [f"{name:<24} {path}" for name, path in found.items()]
        elif action == "up":
            started = time.monotonic()
            fresh = local.up(real_node=real_node)
            verb = "started" if fresh else "already running; reused"
            document["started"] = fresh
            lines = [
                f"local control plane {verb} ({time.monotonic() - started:.1f} s)",
                f"export KUBECONFIG={config.kubeconfig}",
            ]
        elif action == "down":
            stopped = local.down()
            document["stopped"] = stopped
            lines = ["stopped: " + (", ".join(stopped) if stopped else "nothing was running")]
        elif action == "env":
            lines = [f"export KUBECONFIG={config.kubeconfig}"]
        else:
            status = local.status()
            document.update(
                processes=dict(status.pids), api=config.server if status.api_ready else None
            )
            lines = [
                f"{name:<24} {'running, pid ' + str(pid) if pid else 'stopped'}"
                for name, pid in status.pids.items()
            ]
            for name in NODE_PROCESSES:
                pid = local.node.pid(name)
                if pid:
                    lines.append(f"{name + ' (real node)':<24} running, pid {pid}")
            lines.append(
                f"{'api':<24} {'ready at ' + config.server if status.api_ready else 'not ready'}"
            )
            lines.append(f"{'kubeconfig':<24} {config.kubeconfig}")
            code = OK if status.running else FAILED
    except (BinaryError, ClusterError, NodeError) as error:
        raise CliError(str(error), FAILED) from None
    click.echo("\n".join(lines) if output == "table" else render.dump(document, output))
    return code


@dev.command()
@click.argument("action", type=click.Choice(["up", "down", "status", "build"]))
@output_option
@click.pass_context
def argocd(ctx: click.Context, action: str, output: str) -> int:
    """Argo CD beside the local control plane (docs/argocd.md). up: start or reuse, with
    Slipway's health checks in argocd-cm; down: stop it and delete its objects; status; build:
    only find or build its binary."""
    from slipway.devcluster.argocd import ArgoCDError, act
    from slipway.devcluster.binaries import BinaryError

    settings = ctx.obj.settings()
    try:
        document, lines = act(settings.cache_dir, settings.cluster_port, action)
    except (BinaryError, ArgoCDError) as error:
        raise CliError(str(error), FAILED) from None
    click.echo("\n".join(lines) if output == "table" else render.dump(document, output))
    return FAILED if action == "status" and not document.get("running") else OK
