"""What every subcommand shares: exit codes, one-line errors, the output option, the
connection to the cluster (the operator's own async client, `slipway.kube`) and to the
gateway."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

if TYPE_CHECKING:  # imported when a command talks to a cluster: --help and completion stay fast
    from slipway.kube.client import Kube
    from slipway.kube.errors import KubeError

T = TypeVar("T")

# Exit codes (documented in docs/cli.md; `slipway --help` lists them too).
OK = 0  #: done; a run or an evaluation finished with pass or warning
FAILED = 1  #: a run or an evaluation finished with fail (or `invalidate` found nothing)
USAGE = 2  #: wrong arguments, invalid input or settings
NOT_FOUND = 3  #: the run, Shipyard or sequence does not exist
DENIED = 4  #: the cluster or the gateway refused the credentials (401/403)
UNREACHABLE = 5  #: no cluster or gateway could be reached
TIMEOUT = 6  #: `--wait`/`watch` gave up before the run finished

EXIT_CODES_HELP = (
    "Exit codes: 0 done (run passed or warned), 1 run failed, 2 bad usage or input, "
    "3 not found, 4 not allowed, 5 cluster or gateway unreachable, 6 timed out."
)

OUTPUTS = ("table", "json", "yaml")


class CliError(click.ClickException):
    """An error a person can act on: one line on stderr, and `code` as the exit code."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.code = code

    def show(self, file: Any = None) -> None:
        click.echo(f"slipway: {self.format_message()}", err=True)


def fail(message: str, code: int = USAGE) -> NoReturn:
    raise CliError(message, code)


def output_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """`-o/--output table|json|yaml`: table is for people, json and yaml for scripts."""
    return click.option(
        "-o",
        "--output",
        type=click.Choice(OUTPUTS),
        default="table",
        show_default=True,
        help="table for people; json or yaml for scripts",
    )(func)


def namespace_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "-n",
        "--namespace",
        help="the namespace (default: the kubeconfig context's, as kubectl)",
        shell_complete=None,
    )(func)


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run one command's coroutine; Kubernetes and HTTP errors become one-line errors."""
    import aiohttp

    from slipway.kube.errors import KubeError

    try:
        return asyncio.run(coroutine)
    except KubeError as error:
        raise api_error(error) from None
    except aiohttp.ClientError as error:
        raise CliError(f"connection failed: {error}", UNREACHABLE) from None


def api_error(error: KubeError, what: str = "") -> CliError:
    """A one-line CliError for an API server answer."""
    subject = f"{what}: " if what else ""
    if error.status == 404:
        return CliError(f"{subject}not found", NOT_FOUND)
    if error.status in (401, 403):
        return CliError(
            f"{subject}the cluster refused ({error.status} {error.reason}); check your "
            "kubeconfig context and RBAC",
            DENIED,
        )
    if error.status is None:
        return CliError(f"{subject}no answer from the cluster: {error.message}", UNREACHABLE)
    return CliError(f"{subject}the API server answered {error.status}: {error.message}", FAILED)


@dataclass
class Session:
    """A connection to the cluster of the kubeconfig, and the namespace to use."""

    kube: Kube
    namespace: str

    @property
    def token(self) -> str | None:
        """The kubeconfig user's bearer token, if it has one."""
        return self.kube.bearer_token()


def with_session(
    func: Callable[..., Awaitable[T]],
) -> Callable[..., Coroutine[Any, Any, T]]:
    """Give the coroutine `func(session, …)` a Session and close it afterwards; the
    wrapper takes `namespace` (None: the kubeconfig's) as its first argument."""

    @functools.wraps(func)
    async def wrapper(namespace: str | None, *args: Any, **kwargs: Any) -> T:
        import aiohttp

        from slipway.kube.client import default_namespace, open_kube

        try:
            namespace = namespace or default_namespace()
            kube = await open_kube()
        except Exception as error:  # the loader raises several types for a bad kubeconfig
            message = getattr(error, "message", None) or error
            raise CliError(
                f"no cluster to talk to ({message}); set KUBECONFIG or run "
                "`slipway dev cluster up`",
                UNREACHABLE,
            ) from None
        try:
            return await func(Session(kube, namespace), *args, **kwargs)
        except aiohttp.ClientConnectorError as error:
            raise CliError(f"cannot reach the cluster: {error}", UNREACHABLE) from None
        finally:
            await kube.close()

    return wrapper
