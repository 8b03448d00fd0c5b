"""The command line's pure parts: the task tree, durations, input parsing, the live display
on a terminal and piped, and one-line usage errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import pytest

from slipway.cli import main, render
from slipway.cli.common import CliError
from slipway.cli.runs import Display, parse_data, parse_target

NOW = datetime(2026, 1, 1, 0, 1, 0, tzinfo=UTC)


def run(status: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "phone-1", "namespace": "a"},
        "spec": {"shipyard": "osint", "stage": "dev", "sequence": "phone"},
        "status": status,
    }


RUNNING = {
    "phase": "Started",
    "startedAt": "2026-01-01T00:00:00Z",
    "sequence": {"tasks": [{"name": "checknumber"}, {"name": "report"}]},
    "tasks": [
        {"name": "checknumber", "index": 0, "phase": "Started", "startedAt": "2026-01-01T00:00:30Z",
         "message": "looking\nit up"},
    ],
}  # fmt: skip
FINISHED = {
    **RUNNING,
    "phase": "Finished",
    "result": "warning",
    "reason": "Completed",
    "finishedAt": "2026-01-01T00:00:45Z",
    "message": "sequence dev.phone finished with warning after 2 tasks",
    "tasks": [
        {"name": "checknumber", "index": 0, "phase": "Finished", "result": "pass",
         "startedAt": "2026-01-01T00:00:30Z", "finishedAt": "2026-01-01T00:00:31.5Z"},
        {"name": "report", "index": 1, "phase": "Finished", "result": "warning",
         "reason": "Completed", "startedAt": "2026-01-01T00:00:32Z",
         "finishedAt": "2026-01-01T00:00:44Z", "message": "VoIP number"},
    ],
}  # fmt: skip


def test_tree_of_a_running_run_shows_planned_tasks() -> None:
    """A running run: the current task with its duration and message on one line, the tasks
    not reached yet as pending, no verdict."""
    assert render.tree(run(RUNNING), NOW) == [
        "▶ phone-1  dev.phone (Shipyard osint)  running  1m00s",
        "├─ ▶ checknumber  running    30.0s  looking it up",
        "└─ · report       pending",
    ]


def test_tree_of_a_finished_run_ends_with_the_verdict() -> None:
    assert render.tree(run(FINISHED), NOW) == [
        "! phone-1  dev.phone (Shipyard osint)  warning  45.0s",
        "├─ ✔ checknumber  pass        1.5s",
        "└─ ! report       warning    12.0s  VoIP number",
        "verdict: warning (Completed): sequence dev.phone finished with warning after 2 tasks",
    ]


def test_display_redraws_on_a_terminal_and_appends_when_piped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """On a terminal each update moves the cursor back over the last drawing; piped, only
    new task states and the verdict are printed, each once."""
    tty = Display("table", tty=True)
    tty.update(run(RUNNING))
    tty.update(run(FINISHED))
    drawn = capsys.readouterr().out
    assert drawn.count("\x1b[3F\x1b[J") == 1  # back over the 3 lines of the first drawing
    piped = Display("table", tty=False)
    for status in (RUNNING, RUNNING, FINISHED, FINISHED):
        piped.update(run(status))
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:3] for line in lines] == [
        ["▶", "checknumber", "running"],
        ["·", "report", "pending"],
        ["✔", "checknumber", "pass"],
        ["!", "report", "warning"],
        ["verdict:", "warning", "(Completed):"],
    ]


def test_parse_target_and_data(tmp_path: Path) -> None:
    """STAGE.SEQUENCE splits in two; a data file is read first, KEY=VALUE pairs on top (as
    strings); Slipway's own keys and malformed input are refused with a hint."""
    assert parse_target("dev.phone") == ("dev", "phone")
    for bad in ("dev", ".phone", "dev.", "a.b.c"):
        with pytest.raises(CliError, match=r"STAGE\.SEQUENCE"):
            parse_target(bad)
    data = tmp_path / "in.json"
    data.write_text('{"number": "+1", "depth": 2}')
    assert parse_data(("number=+44 20", "x=1=2"), str(data)) == {
        "number": "+44 20",
        "depth": 2,
        "x": "1=2",
    }
    with pytest.raises(CliError, match="Slipway's own"):
        parse_data(("run=x",), None)
    with pytest.raises(CliError, match="KEY=VALUE"):
        parse_data(("x",), None)
    data.write_text("[1]")
    with pytest.raises(CliError, match="JSON object"):
        parse_data((), str(data))


def test_usage_errors_are_one_line_with_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trigger"]) == 2
    err = capsys.readouterr().err
    assert err == "slipway: Missing argument 'STAGE.SEQUENCE'. (see `slipway trigger --help`)\n"
    assert main(["no-such-command"]) == 2
    assert capsys.readouterr().err.startswith("slipway: No such command 'no-such-command'")


def test_table_pads_columns() -> None:
    assert render.table(["A", "LONGER"], [["xyz", "1"]]) == "A     LONGER\nxyz   1"


def test_every_command_has_output_json_and_yaml() -> None:
    """`-o json|yaml` on every command that prints something (all but run/completion)."""
    from slipway.cli import cli

    def commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
        found = []
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                found += commands(command, f"{prefix}{name} ")
            else:
                found.append((prefix + name, command))
        return found

    for name, command in commands(cli):
        if name in ("run", "completion"):
            continue
        [option] = [p for p in command.params if "--output" in getattr(p, "opts", [])]
        assert {"json", "yaml"} <= set(option.type.choices), name  # type: ignore[attr-defined]
