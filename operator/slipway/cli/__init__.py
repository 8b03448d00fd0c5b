"""The `slipway` command, also installed as `kubectl-slipway` so that `kubectl slipway …`
runs it.

    slipway [run]                         run the operator (kopf handlers and event gateway)
    slipway capabilities                  what people can start (the sequences with a title)
    slipway trigger STAGE.SEQUENCE …      start a run through the gateway; --wait follows it
    slipway get|watch RUN                 a run's task tree; watch follows it live
    slipway list [filters]                the runs of a namespace
    slipway abort|rerun RUN               stop a run; start it again with the same inputs
    slipway evaluate …                    score SLI values against a Keptn v1 SLO, offline
    slipway invalidate TASKEXECUTION      leave an evaluation out of later comparisons
    slipway dev cluster up|down|…         the local control plane for development and tests
    slipway dev argocd up|down|…          Argo CD beside it (docs/argocd.md)
    slipway completion bash|zsh|fish      the shell completion script

Built on click (see docs/cli.md for why) and on the operator's own async Kubernetes client
(`slipway.kube`); `trigger` talks to the event gateway like any other client.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from typing import Any

import click

from slipway.cli.common import EXIT_CODES_HELP, USAGE, CliError
from slipway.cli.control import CONTROL_COMMANDS
from slipway.cli.dev import dev
from slipway.cli.quality import evaluate, invalidate
from slipway.cli.runs import COMMANDS
from slipway.settings import Settings


class Context:
    """What the group passes down: the settings, read once and only when a command needs
    them (so `evaluate` works even with a stray SLIPWAY_* variable)."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose

    @functools.cache  # noqa: B019 (one Context per process)
    def settings(self) -> Settings:
        try:
            return Settings.from_env()
        except ValueError as error:
            raise CliError(f"invalid settings: {error}", USAGE) from None


@click.group(
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_CODES_HELP,
)
@click.option("-v", "--verbose", is_flag=True, help="debug logging")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> Any:
    """Slipway: a workflow engine inside Kubernetes. Without a command: run the operator."""
    ctx.obj = Context(verbose)
    if ctx.invoked_subcommand not in (None, "run") and not verbose:
        # The client library's own warnings (e.g. "Config not found") would be a second
        # line beside the one-line error the command prints itself.
        logging.getLogger("kubernetes_asyncio").setLevel(logging.ERROR)
    if ctx.invoked_subcommand is None:
        return ctx.invoke(run)
    return None


@cli.command()
@click.pass_context
def run(ctx: click.Context) -> int:
    """Run the operator: kopf's handlers, the event gateway and /metrics."""
    from slipway import logs
    from slipway.app import run_operator

    settings = ctx.obj.settings()
    logs.configure(settings.log_format, ctx.obj.verbose)
    asyncio.run(run_operator(settings))
    return 0


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.option("--prog", default="slipway", help="the command's name (kubectl-slipway too)")
def completion(shell: str, prog: str) -> int:
    """Print the shell completion script, e.g. `source <(slipway completion bash)`."""
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)
    assert completer is not None  # the choice above lists only shells click knows
    variable = "_" + prog.replace("-", "_").upper() + "_COMPLETE"
    click.echo(completer(cli, {}, prog, variable).source())
    return 0


for command in (*COMMANDS, *CONTROL_COMMANDS, evaluate, invalidate, dev):
    cli.add_command(command)  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console scripts and of `python -m slipway`; the exit code."""
    try:
        if argv is None:  # the program's own arguments; its name as it was called
            result = cli.main(standalone_mode=False)
        else:
            result = cli.main(args=list(argv), prog_name="slipway", standalone_mode=False)
    except click.exceptions.Exit as done:
        return int(done.exit_code)
    except click.UsageError as error:  # one line, and where to read more
        where = error.ctx.command_path if error.ctx is not None else "slipway"
        click.echo(f"slipway: {error.format_message()} (see `{where} --help`)", err=True)
        return int(error.exit_code)
    except CliError as error:  # one line, and its documented exit code
        error.show()
        return error.code
    except click.ClickException as error:
        click.echo(f"slipway: {error.format_message()}", err=True)
        return int(error.exit_code)
    except click.exceptions.Abort:
        click.echo("slipway: interrupted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("slipway: interrupted", err=True)
        return 130
    return int(result) if isinstance(result, int) else 0
