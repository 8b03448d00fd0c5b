"""validate_shipyard: what the CRD schema cannot check about a Shipyard."""

from __future__ import annotations

from typing import Any

import pytest

from slipway.api.shipyard import ShipyardSpec
from slipway.engine.shipyard import (
    DUPLICATE_NAME,
    ENDLESS_LINK,
    UNKNOWN_SEQUENCE,
    UNKNOWN_STAGE,
    UNKNOWN_TASK,
    describe,
    validate_shipyard,
)


def seq(name: str, *triggers: dict[str, Any], tasks: tuple[str, ...] = ("t",)) -> dict[str, Any]:
    return {"name": name, "tasks": [{"name": t} for t in tasks], "triggeredOn": list(triggers)}


def on(event: str, **match: str) -> dict[str, Any]:
    trigger: dict[str, Any] = {"event": event}
    if match:
        trigger["selector"] = {"match": {k.replace("__", "."): v for k, v in match.items()}}
    return trigger


def spec(**stages: list[dict[str, Any]]) -> ShipyardSpec:
    return ShipyardSpec.model_validate(
        {"stages": [{"name": name, "sequences": s} for name, s in stages.items()]}
    )


CASES: list[tuple[str, ShipyardSpec, list[tuple[str, str, str]]]] = [
    (
        "consistent links",
        spec(
            dev=[seq("a", tasks=("build", "test"))],
            prod=[seq("a", on("dev.a.finished", result="pass"), on("dev.a.finished"))],
        ),
        [],
    ),
    (
        "unknown stage",
        spec(dev=[seq("a", on("qa.a.finished"))]),
        [(UNKNOWN_STAGE, "spec.stages[0].sequences[0].triggeredOn[0]", "stage 'qa'")],
    ),
    (
        "unknown sequence",
        spec(dev=[seq("a"), seq("b", on("dev.c.finished"))]),
        [(UNKNOWN_SEQUENCE, "spec.stages[0].sequences[1].triggeredOn[0]", "sequence 'c'")],
    ),
    (
        "selector names a task of another sequence",
        spec(
            dev=[seq("a", tasks=("build",)), seq("b", tasks=("deploy",))],
            prod=[seq("a", on("dev.a.finished", deploy__result="fail"))],
        ),
        [
            (
                UNKNOWN_TASK,
                "spec.stages[1].sequences[0].triggeredOn[0].selector.match",
                "task 'deploy', which is not in sequence 'dev.a' (tasks: build)",
            )
        ],
    ),
    (
        "selector names a task of the triggering sequence",
        spec(
            dev=[seq("a", tasks=("build",)), seq("b", on("dev.a.finished", build__result="fail"))]
        ),
        [],
    ),
    (
        "self-loop without selector",
        spec(dev=[seq("a", on("dev.a.finished"))]),
        [(ENDLESS_LINK, "spec.stages", "dev.a -> dev.a")],
    ),
    (
        "two-sequence loop without selector, reported once",
        spec(dev=[seq("a", on("prod.b.finished"))], prod=[seq("b", on("dev.a.finished"))]),
        [(ENDLESS_LINK, "spec.stages", "dev.a -> prod.b -> dev.a")],
    ),
    (
        "retry loop with a selector is allowed (as in Keptn)",
        spec(dev=[seq("a", on("dev.a.finished", t__result="fail"))]),
        [],
    ),
    (
        "duplicate names the schema would have rejected",
        spec(dev=[seq("a", tasks=("t", "t")), seq("a")]),
        [
            (DUPLICATE_NAME, "spec.stages[0].sequences", "sequence 'a'"),
            (DUPLICATE_NAME, "spec.stages[0].sequences[0].tasks", "task 't'"),
        ],
    ),
]


@pytest.mark.parametrize(
    ("shipyard", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_validate_shipyard(shipyard: ShipyardSpec, expected: list[tuple[str, str, str]]) -> None:
    """Each problem is found with its reason, the path of the field and a message naming it."""
    problems = validate_shipyard(shipyard)
    assert [(p.reason, p.path) for p in problems] == [(r, path) for r, path, _ in expected]
    for problem, (_, _, text) in zip(problems, expected, strict=True):
        assert text in problem.message


def test_unknown_stage_message_lists_the_known_stages() -> None:
    """The message says which stages exist, so the fix is obvious."""
    (problem,) = validate_shipyard(spec(dev=[seq("a")], prod=[seq("b", on("qa.a.finished"))]))
    assert "(stages: dev, prod)" in problem.message


def test_describe_joins_every_problem() -> None:
    """describe() gives one line holding every problem's message."""
    problems = validate_shipyard(spec(dev=[seq("a", on("qa.a.finished"), on("dev.x.finished"))]))
    assert describe(problems) == "; ".join(p.message for p in problems)
    assert len(problems) == 2
