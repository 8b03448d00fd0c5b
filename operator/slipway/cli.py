"""The `slipway` command.

slipway [run]                       run the operator (kopf handlers and event gateway)
slipway dev cluster up|down|status|env|build
                                    the local control plane for development and tests
slipway evaluate --slo slo.yaml --sli values.json [--history history.json] [--output json|table]
                                    score SLI values against a Keptn v1 SLO, offline
slipway invalidate <taskexecution> [-n namespace] [--undo]
                                    leave an evaluation out of later comparisons (or undo that)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Sequence

from slipway.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slipway", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="run the operator (the default)")

    dev = commands.add_parser("dev", help="developer tools").add_subparsers(
        dest="dev_command", required=True
    )
    cluster = dev.add_parser("cluster", help="the local control plane (no Docker needed)")
    cluster.add_argument(
        "action",
        choices=["up", "down", "status", "env", "build"],
        help="up: start or reuse; down: stop all; status; env: print `export KUBECONFIG=…`; "
        "build: only find or build the binaries (and the Prometheus the tests use)",
    )

    evaluate = commands.add_parser(
        "evaluate",
        help="score SLI values against a Keptn v1 SLO document, offline; "
        "exit 0 pass or warning, 1 fail, 2 invalid document or input",
    )
    evaluate.add_argument("--slo", required=True, help="the SLO document (a Keptn v1 slo.yaml)")
    evaluate.add_argument(
        "--sli", required=True, help='JSON object: SLI name -> number, null or {"error": "..."}'
    )
    evaluate.add_argument(
        "--history",
        help="JSON list of earlier evaluations, newest first: "
        '{"result": ..., "values": {...}, "invalidated": false} or earlier --output json reports',
    )
    evaluate.add_argument("--output", choices=["json", "table"], default="table")

    invalidate = commands.add_parser(
        "invalidate",
        help="mark a finished evaluation (its TaskExecution) invalidated: later evaluations of "
        "the same shipyard/stage/sequence/task never compare with it",
    )
    invalidate.add_argument("taskexecution", help="the TaskExecution's name")
    invalidate.add_argument(
        "-n", "--namespace", help="its namespace (default: the kubeconfig context's)"
    )
    invalidate.add_argument(
        "--undo", action="store_true", help="remove the mark: compare with it again"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and of `python -m slipway`; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    if not args.verbose:
        # kopf logs every handler call ("Handler 'x' succeeded") at INFO: on every watch
        # event of every run that is most of the log and real CPU. Keep its warnings.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    if args.command == "evaluate":  # offline and pure: needs no settings
        return _evaluate(args.slo, args.sli, args.history, args.output)
    if args.command == "invalidate":  # talks to the cluster of the kubeconfig, not the operator
        return _invalidate(args.taskexecution, args.namespace, args.undo)
    try:
        settings = Settings.from_env()
    except ValueError as error:
        print(f"slipway: invalid settings: {error}", file=sys.stderr)
        return 2
    if args.command in (None, "run"):
        from slipway.app import run_operator

        asyncio.run(run_operator(settings))
        return 0
    if args.command == "dev":
        return _cluster(settings, args.action)
    return 2


def _cluster(settings: Settings, action: str) -> int:
    from slipway.devcluster.binaries import BinaryError, ensure_binaries, ensure_prometheus
    from slipway.devcluster.cluster import ClusterConfig, ClusterError, LocalCluster

    config = ClusterConfig(
        cache_dir=settings.cache_dir,
        port=settings.cluster_port,
        kubebuilder_assets=settings.kubebuilder_assets,
    )
    cluster = LocalCluster(config)
    try:
        if action == "build":
            for name, path in ensure_binaries(config.cache_dir, config.kubebuilder_assets).items():
                print(f"{name:<24} {path}")
            # Not part of the control plane: the real Prometheus the evaluation tests query.
            print(f"{'prometheus':<24} {ensure_prometheus(config.cache_dir)}")
        elif action == "up":
            started = time.monotonic()
            fresh = cluster.up()
            verb = "started" if fresh else "already running; reused"
            print(f"local control plane {verb} ({time.monotonic() - started:.1f} s)")
            print(f"export KUBECONFIG={config.kubeconfig}")
        elif action == "down":
            stopped = cluster.down()
            print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        elif action == "env":
            print(f"export KUBECONFIG={config.kubeconfig}")
        else:
            status = cluster.status()
            for name, pid in status.pids.items():
                print(f"{name:<24} {'running, pid ' + str(pid) if pid else 'stopped'}")
            print(f"{'api':<24} {'ready at ' + config.server if status.api_ready else 'not ready'}")
            print(f"{'kubeconfig':<24} {config.kubeconfig}")
            return 0 if status.running else 1
    except (BinaryError, ClusterError) as error:
        print(f"slipway: {error}", file=sys.stderr)
        return 1
    return 0


def _evaluate(slo_path: str, sli_path: str, history_path: str | None, output: str) -> int:
    """`slipway evaluate`: 0 pass or warning, 1 fail, 2 an invalid document or input."""
    import json

    import yaml

    from slipway.api.slo import parse_slo
    from slipway.engine.report import render_json, render_table
    from slipway.engine.scoring import evaluate, parse_history, parse_values

    path = slo_path
    try:
        with open(slo_path, encoding="utf-8") as file:
            slo = parse_slo(yaml.safe_load(file))
        path = sli_path
        with open(sli_path, encoding="utf-8") as file:
            values = parse_values(json.load(file))
        history = []
        if history_path is not None:
            path = history_path
            with open(history_path, encoding="utf-8") as file:
                history = parse_history(json.load(file))
    except (OSError, ValueError, yaml.YAMLError) as error:  # JSON errors are ValueErrors
        print(f"slipway evaluate: {path}: {error}", file=sys.stderr)
        return 2
    report = evaluate(slo, values, history)
    print(render_json(report) if output == "json" else render_table(report))
    return 1 if report.result == "fail" else 0


def _invalidate(name: str, namespace: str | None, undo: bool) -> int:
    """`slipway invalidate`: set (or, with `undo`, remove) the TaskExecution's
    `slipway.dev/invalidated: "true"` annotation. 0 done, 1 not found or refused."""
    return asyncio.run(_invalidate_async(name, namespace, undo))


async def _invalidate_async(name: str, namespace: str | None, undo: bool) -> int:
    from slipway.constants import (
        ANNOTATION_INVALIDATED,
        LABEL_SEQUENCE,
        LABEL_SHIPYARD,
        LABEL_STAGE,
        LABEL_TASK,
        TASKEXECUTION_PLURAL,
    )
    from slipway.kube.client import Ref, default_namespace, open_kube
    from slipway.kube.errors import KubeError
    from slipway.providers.evaluation import OUTPUT_KEY

    try:
        namespace = namespace or default_namespace()
        kube = await open_kube()
    except KubeError as error:
        print(f"slipway invalidate: no cluster to talk to: {error.message}", file=sys.stderr)
        return 1
    patch = {"metadata": {"annotations": {ANNOTATION_INVALIDATED: None if undo else "true"}}}
    try:
        found = await kube.patch(Ref(TASKEXECUTION_PLURAL, namespace, name), patch)
    except KubeError as error:
        what = "not found" if error.not_found else f"{error.status} {error.reason}"
        print(f"slipway invalidate: taskexecution {namespace}/{name}: {what}", file=sys.stderr)
        return 1
    finally:
        await kube.close()
    labels = found.get("metadata", {}).get("labels") or {}
    scope = "/".join(
        labels.get(key, "?") for key in (LABEL_SHIPYARD, LABEL_STAGE, LABEL_SEQUENCE, LABEL_TASK)
    )
    has_report = OUTPUT_KEY in ((found.get("status") or {}).get("output") or {})
    if undo:
        print(f"taskexecution {namespace}/{name}: no longer invalidated")
    else:
        print(
            f"taskexecution {namespace}/{name} invalidated: later evaluations of {scope} will "
            "not compare with it" + ("" if has_report else " (it has no evaluation report yet)")
        )
    return 0
