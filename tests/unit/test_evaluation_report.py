"""What an evaluation records: the one-line verdict and the output holding the report."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from slipway.api.slo import parse_slo
from slipway.engine.scoring import SLIError, evaluate, parse_history
from slipway.providers.evaluation import MAX_MESSAGE, report_output, verdict_line
from slipway.providers.sli.window import Window, WindowError

SLO = parse_slo(
    {
        "objectives": [
            {
                "sli": "error_rate",
                "pass": [{"criteria": ["<=1"]}],
                "warning": [{"criteria": ["<=5"]}],
                "weight": 2,
            },
            {"sli": "p95", "pass": [{"criteria": ["<600"]}], "warning": [{"criteria": ["<800"]}]},
            {"sli": "throughput"},
            {"sli": "exif", "pass": [{"criteria": ["=1"]}], "key_sli": True},
        ],
        "total_score": {"pass": "90%", "warning": "75%"},
    }
)


def test_verdict_line_names_score_result_and_every_objective() -> None:
    """One line: score, result, then per objective value, status and the criteria that
    decided it; a missing value says `no value`."""
    report = evaluate(SLO, {"error_rate": 0.7, "p95": 700, "throughput": 12, "exif": 1})
    assert verdict_line(report) == (
        "score 87.5 (warning): error_rate 0.7 pass (<=1), p95 700 warning (<800), "
        "throughput 12 info, exif 1 pass (=1)"
    )
    failed = evaluate(SLO, {"error_rate": 9, "p95": 100, "exif": SLIError("run data: gone")})
    assert verdict_line(failed) == (
        "score 25 (fail), key SLI exif failed: error_rate 9 fail (<=1), p95 100 pass (<600), "
        "throughput no value info, exif no value fail"
    )


def test_verdict_line_is_bounded() -> None:
    """Hundreds of objectives still give a line an Event can carry."""
    many = parse_slo(
        {
            "objectives": [{"sli": f"sli_{i}", "pass": [{"criteria": ["<1"]}]} for i in range(200)],
            "total_score": {"pass": "90%"},
        }
    )
    line = verdict_line(evaluate(many, {}))
    assert len(line) == MAX_MESSAGE
    assert line.endswith("…")


def test_output_is_the_report_json_with_its_window_and_reads_back_as_history() -> None:
    """The output holds the camelCase report and the window; it is valid history input."""
    end = datetime(2024, 5, 1, 12, tzinfo=UTC)
    report = evaluate(SLO, {"error_rate": 0.5, "p95": 100, "exif": 1})
    output = report_output(report, Window(end - timedelta(minutes=5), end, "run"))
    assert output["result"] == "pass"
    assert output["score"] == 100
    assert output["window"] == {
        "start": "2024-05-01T11:55:00Z",
        "end": "2024-05-01T12:00:00Z",
        "origin": "run",
    }
    assert output["objectives"][0]["comparedValue"] is None
    assert output["objectives"][0]["targets"]["pass"][0][0] == {
        "criteria": "<=1",
        "threshold": 1.0,
        "met": True,
    }
    json.dumps(output)  # plain JSON, as a status needs
    [earlier] = parse_history([output])
    assert earlier.values["error_rate"] == 0.5
    broken = report_output(report, WindowError("the run has no startedAt"))
    assert broken["window"] == {"error": "the run has no startedAt"}
