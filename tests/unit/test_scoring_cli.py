"""Rendering reports, and `slipway evaluate` end to end on files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from slipway.api.slo import parse_slo
from slipway.cli import main
from slipway.engine.report import Report, format_number, render_json, render_table
from slipway.engine.scoring import SLIError, evaluate

SLO_YAML = """\
spec_version: '1.0'
comparison:
  compare_with: several_results
  number_of_comparison_results: 2
  include_result_with_score: pass
  aggregate_function: avg
objectives:
  - sli: error_rate
    pass: [{criteria: ["<=1"]}]
    warning: [{criteria: ["<=5"]}]
    weight: 2
    key_sli: true
  - sli: p95_latency
    displayName: P95 latency
    pass:
      - criteria: ["<=+10%", "<600"]
  - sli: throughput
total_score:
  pass: "90%"
  warning: "75%"
"""


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "-"), (3.0, "3"), (-2.0, "-2"), (0.5, "0.5"), (2 / 3, "0.666667"), (1e20, "1e+20"),
     (float("nan"), "nan")],
)  # fmt: skip
def test_format_number(value: float | None, text: str) -> None:
    """Integers print without `.0`, others to 6 significant digits, None as `-`."""
    assert format_number(value) == text


def sample_report() -> Report:
    slo = parse_slo(yaml.safe_load(SLO_YAML))
    return evaluate(slo, {"error_rate": 3, "p95_latency": 700, "throughput": SLIError("no data")})


def test_render_json_is_the_report_with_camel_case_keys() -> None:
    """JSON output has result, score (a number), objectives and camelCase keys."""
    document = json.loads(render_json(sample_report()))
    assert document["result"] == "fail"
    assert isinstance(document["score"], float)
    assert document["score"] == pytest.approx(100 / 3)
    assert set(document) >= {"result", "score", "message", "keySliFailed", "totals", "objectives"}
    first = document["objectives"][0]
    assert set(first) == {
        "sli", "displayName", "value", "comparedValue", "targets", "status", "score", "weight",
        "keySli", "message",
    }  # fmt: skip
    assert first["targets"]["pass"] == [[{"criteria": "<=1", "threshold": 1.0, "met": False}]]
    assert document["totals"]["passThreshold"] == 90.0


def test_render_table_shows_every_objective_and_the_verdict() -> None:
    """The table has a row per objective with status, value, points and targets, then reasons."""
    table = render_table(sample_report())
    lines = table.splitlines()
    assert lines[0].startswith("RESULT fail   SCORE 33.33")
    assert "pass >= 90%, warning >= 75%" in lines[0]
    row = next(line for line in lines if line.startswith("error_rate *"))
    assert row.split()[2:6] == ["warning", "3", "-", "1/2"]
    assert "pass: <=1 missed; warning: <=5 met" in row
    latency = next(line for line in lines if line.startswith("P95 latency"))
    assert "<=+10% [no earlier value] met and <600 missed" in latency
    assert any(line.startswith("throughput") and " info " in line for line in lines)
    assert "throughput: informative only (no pass criteria): no value (no data)" in lines
    assert "* key SLI" in lines
    assert lines[-1] == "fail: score 33.3333 < 75%"


def test_render_table_without_objectives() -> None:
    """An SLO without objectives still renders, saying so."""
    report = evaluate(parse_slo({"total_score": {"pass": "90%"}}), {})
    assert "(no objectives)" in render_table(report)


@pytest.fixture
def files(tmp_path: Path) -> Any:
    """Write the named inputs into tmp_path; returns a function giving their paths."""

    def write(name: str, content: object) -> str:
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        return str(path)

    return write


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["evaluate", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("values", "result", "code"),
    [
        ({"error_rate": 0.5, "p95_latency": 500}, "pass", 0),
        ({"error_rate": 3, "p95_latency": 500, "throughput": 10}, "fail", 1),
        ({"error_rate": 0.5, "p95_latency": 700}, "fail", 1),
        ({"error_rate": 9, "p95_latency": 500}, "fail", 1),
        ({"error_rate": None, "p95_latency": 500}, "fail", 1),
    ],
)
def test_cli_json_output_and_exit_code(
    files: Any, capsys: pytest.CaptureFixture[str], values: dict[str, Any], result: str, code: int
) -> None:
    """`--output json` prints one report object; exit 0 for pass or warning, 1 for fail."""
    slo, sli = files("slo.yaml", SLO_YAML), files("values.json", values)
    exit_code, out, err = run(["--slo", slo, "--sli", sli, "--output", "json"], capsys)
    report = json.loads(out)
    assert (exit_code, report["result"], err) == (code, result, "")
    assert 0 <= report["score"] <= 100


def test_cli_warning_exits_zero(files: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """A warning verdict exits 0, like pass: scripts stop only on fail."""
    slo = files(
        "slo.yaml",
        "objectives: [{sli: a, pass: [{criteria: ['<1']}], warning: [{criteria: ['<5']}]}]\n"
        "total_score: {pass: '90%', warning: '50%'}\n",
    )
    code, out, _ = run(
        ["--slo", slo, "--sli", files("v.json", {"a": 3}), "--output", "json"], capsys
    )
    assert (code, json.loads(out)["result"]) == (0, "warning")


def test_cli_history_and_report_round_trip(files: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """History entries (invalidated skipped) feed relative criteria; a report is a valid entry."""
    slo = files("slo.yaml", SLO_YAML)
    history = files(
        "history.json",
        [
            {"result": "pass", "values": {"p95_latency": 100}, "invalidated": True},
            {"result": "fail", "values": {"p95_latency": 100}},
            {"result": "pass", "values": {"p95_latency": 400}, "id": "run-7"},
            {"result": "pass", "values": {"p95_latency": 500}},
            {"result": "pass", "values": {"p95_latency": 900}},
        ],
    )
    sli = files("values.json", {"error_rate": 0.5, "p95_latency": 480})
    code, out, _ = run(
        ["--slo", slo, "--sli", sli, "--history", history, "--output", "json"], capsys
    )
    report = json.loads(out)
    assert report["comparison"]["compared"] == ["run-7", "#3"]
    assert report["objectives"][1]["comparedValue"] == 450.0
    assert (code, report["result"]) == (0, "pass")

    fed_back = files("fed-back.json", [report])
    later = files("later.json", {"error_rate": 0.5, "p95_latency": 560})
    code, out, _ = run(
        ["--slo", slo, "--sli", later, "--history", fed_back, "--output", "json"], capsys
    )
    assert json.loads(out)["objectives"][1]["comparedValue"] == 480.0
    assert code == 1


def test_cli_table_is_the_default_output(files: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --output the report is a table for people."""
    sli = files("values.json", {"error_rate": 0.5, "p95_latency": 500})
    code, out, _ = run(["--slo", files("slo.yaml", SLO_YAML), "--sli", sli], capsys)
    assert code == 0
    assert out.startswith("RESULT pass   SCORE 100.00")
    assert out.rstrip().endswith("pass: score 100 >= 90%")


@pytest.mark.parametrize(
    ("slo", "values", "history", "message"),
    [
        ("total_score: {warning: '5%'}\n", {}, None,
         "slo.yaml: not a valid SLO document:\n  total_score.pass: Field required"),
        ("objectives: [{sli: a, pass: [{criteria: ['<<1']}]}]\ntotal_score: {pass: 90}\n", {},
         None, "objectives.0.pass.0.criteria.0: invalid criterion '<<1'"),
        ("objectives: [\n", {}, None, "slo.yaml: while parsing"),
        ("", {}, None, "slo.yaml: not an SLO document: it is empty"),
        (SLO_YAML, {"error_rate": "low"}, None,
         'values.json: invalid SLI values:\n  error_rate: "low" is not a number'),
        (SLO_YAML, "{not json", None, "values.json: Expecting property name"),
        (SLO_YAML, {}, [{"result": "failed"}], 'history.json: invalid history:\n  [0].result'),
        (SLO_YAML, {}, {"result": "pass"}, "history.json: a history must be a JSON list"),
    ],
)  # fmt: skip
def test_cli_invalid_input_exits_2_with_a_clear_error(
    files: Any,
    capsys: pytest.CaptureFixture[str],
    slo: str,
    values: object,
    history: object,
    message: str,
) -> None:
    """An invalid document or input prints which file and what is wrong, and exits 2."""
    argv = ["--slo", files("slo.yaml", slo), "--sli", files("values.json", values)]
    if history is not None:
        argv += ["--history", files("history.json", history)]
    code, out, err = run(argv, capsys)
    assert (code, out) == (2, "")
    assert err.startswith("slipway evaluate: ")
    assert message in err


def test_cli_missing_file_exits_2(files: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """A file that cannot be read is invalid input too."""
    slo = files("slo.yaml", SLO_YAML)
    code, _, err = run(["--slo", slo, "--sli", slo + ".missing.json"], capsys)
    assert code == 2
    assert "No such file or directory" in err
