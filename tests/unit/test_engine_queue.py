"""Concurrency queues: key rendering, admission in order, slots freed by finished and
deleted runs, and the run engine's Queued phase."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from slipway.api.sequencerun import RunPhase, SequenceRunSpec, SequenceRunStatus
from slipway.api.shipyard import ShipyardSpec
from slipway.engine.queue import (
    KeyTemplateError,
    Member,
    QueueSpec,
    admit,
    admits,
    member_of,
    needs_queue,
    queue_lengths,
    queue_message,
    queue_of,
    render_key,
    still_admitted,
    with_admitted,
)
from slipway.engine.runs import RunView, decide_run

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

SHIPYARD = ShipyardSpec.model_validate(
    {
        "stages": [
            {
                "name": "dev",
                "sequences": [
                    {
                        "name": "check",
                        "tasks": [{"name": "t"}],
                        "concurrency": {"limit": 1, "key": "{{ data.number }}"},
                    },
                    {"name": "free", "tasks": [{"name": "t"}]},
                    {"name": "two", "tasks": [{"name": "t"}], "concurrency": {"limit": 2}},
                ],
            }
        ]
    }
)


def spec(data: dict[str, object] | None = None, sequence: str = "check") -> SequenceRunSpec:
    return SequenceRunSpec(shipyard="s", stage="dev", sequence=sequence, data=data or {})


def test_render_key_substitutes_names_and_data() -> None:
    """Placeholders of stage, sequence, shipyard and data paths become text; nothing else."""
    run = spec({"number": "+44", "n": 3, "flag": True, "deep": {"a": "x"}})
    assert render_key("{{ stage }}.{{sequence}}/{{ shipyard }}", run) == "dev.check/s"
    assert render_key("{{ data.number }}-{{ data.n }}-{{ data.flag }}", run) == "+44-3-true"
    assert render_key("{{ data.deep.a }}", run) == "x"
    assert render_key("plain text", run) == "plain text"


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("{{ data.missing }}", "has no value"),
        ("{{ data.deep }}", "is a dict"),
        ("{{ data.number.more }}", "has no value"),
        ("{{ nothing }}", "has no value"),
    ],
)
def test_render_key_refuses_what_it_cannot_render(template: str, words: str) -> None:
    """A missing value or a map is an error naming the placeholder, never a guess."""
    with pytest.raises(KeyTemplateError, match=words):
        render_key(template, spec({"number": "1", "deep": {"a": 1}}))


def member(name: str, minute: int, key: str = "k", **flags: bool) -> Member:
    return Member(name, "s", T0 + timedelta(minutes=minute), key, **flags)


def test_first_in_first_out_by_creation_then_name() -> None:
    """With limit 1 and nobody running, only the oldest waiting run may start; equal
    creation times are ordered by name."""
    queue = QueueSpec("k", 1)
    others = [member("b", 0), member("c", 1), member("a", 2)]
    assert admit("a0", "s", T0, queue, others).admitted  # "a0" < "b" at the same time
    waiting = admit("c", "s", T0 + timedelta(minutes=1), queue, others)
    assert not waiting.admitted
    assert waiting.ahead == ["b"]
    assert admit("a", "s", T0 + timedelta(minutes=2), queue, others).ahead == ["b", "c"]


def test_holders_take_slots_and_finished_or_deleted_runs_free_them() -> None:
    """A started run holds its slot wherever it stands in line; a finished or deleted one
    holds nothing."""
    queue = QueueSpec("k", 1)
    holder = member("late", 9, holding=True)
    assert admit("x", "s", T0, queue, [holder]).ahead == ["late"]
    assert admit("x", "s", T0, queue, [replace(holder, finished=True)]).admitted
    assert admit("x", "s", T0, queue, []).admitted


def test_keys_and_shipyards_keep_queues_apart() -> None:
    """Runs with another key, or of another Shipyard, are not in the same queue."""
    queue = QueueSpec("k", 1)
    others = [member("o", 0, key="other", holding=True), replace(member("p", 0), shipyard="t")]
    assert admit("x", "s", T0 + timedelta(minutes=5), queue, others).admitted


def test_limit_two_admits_two() -> None:
    """limit 2: the two oldest run, the third waits naming both."""
    queue = QueueSpec("k", 2)
    others = [member("a", 0), member("b", 1)]
    assert admit("a", "s", T0, queue, others).admitted
    assert admit("b", "s", T0 + timedelta(minutes=1), queue, others).admitted
    assert admit("c", "s", T0 + timedelta(minutes=2), queue, others).ahead == ["a", "b"]


def test_member_of_renders_keys_of_runs_not_yet_seen() -> None:
    """A run without a recorded key is placed by its spec; a started one only by its
    record; one being deleted is finished."""
    unseen = member_of("u", T0, spec({"number": "1"}), None, None, False, SHIPYARD)
    assert (unseen.key, unseen.holding, unseen.finished) == ("1", False, False)
    started = member_of("s", T0, spec({"number": "1"}), "Started", "1", False, SHIPYARD)
    assert started.holding
    old = member_of("o", T0, spec({"number": "1"}), "Started", None, False, SHIPYARD)
    assert (old.key, old.holding) == (None, False)
    gone = member_of("g", T0, spec({"number": "1"}), "Started", "1", True, SHIPYARD)
    assert gone.finished
    broken = member_of("b", T0, spec({}), None, None, False, SHIPYARD)
    assert broken.key is None


def test_needs_queue_only_for_runs_not_started_with_concurrency() -> None:
    assert needs_queue(None, spec({"number": "1"}), SHIPYARD)
    assert needs_queue("Queued", spec({}), SHIPYARD)  # a bad key: the decision says so
    assert not needs_queue("Started", spec({"number": "1"}), SHIPYARD)
    assert not needs_queue(None, spec(sequence="free"), SHIPYARD)
    assert not needs_queue(None, spec({"number": "1"}), None)
    assert queue_of(spec(sequence="two"), SHIPYARD) == QueueSpec("dev.two", 2)


def test_queue_message_and_lengths() -> None:
    """The message names the runs ahead (at most five) and the limit; lengths count."""
    ahead = admit(
        "z", "s", T0 + timedelta(hours=1), QueueSpec("k", 1), [member(f"r{i}", i) for i in range(7)]
    )
    text = queue_message(QueueSpec("k", 1), ahead)
    assert text.startswith("queued behind r0, r1, r2, r3, r4 and 2 more")
    assert "limit 1" in text
    lengths = queue_lengths([member("a", 0, holding=True), member("b", 1), member("c", 2)])
    assert lengths == {("s", "k"): (1, 2)}


def view(name: str, minute: int, data: dict[str, object], **status: object) -> RunView:
    return RunView(
        namespace="ns",
        name=name,
        uid=f"uid-{name}",
        created=T0 + timedelta(minutes=minute),
        labels={},
        annotations={},
        spec=spec(data),
        status=SequenceRunStatus.model_validate(status),
    )


def test_decide_run_queues_then_starts_when_the_slot_frees() -> None:
    """A run behind a started one is Queued with the message and its key recorded, creates
    nothing, and starts once the holder is gone."""
    run = view("second", 1, {"number": "1"})
    holder = member("first", 0, key="1", holding=True)
    decision = decide_run(run, SHIPYARD, {}, T0, [holder])
    assert decision.create_executions == []
    status = SequenceRunStatus.model_validate(decision.status)
    assert status.phase == RunPhase.QUEUED
    assert status.queue is not None
    assert status.queue.key == "1"
    assert "queued behind first" in (status.message or "")
    assert [e.reason for e in decision.events] == ["RunQueued"]
    queued = replace(run, status=status)
    again = decide_run(queued, SHIPYARD, {}, T0, [holder])
    assert again.status is None
    assert again.events == []
    started = decide_run(queued, SHIPYARD, {}, T0, [replace(holder, finished=True)])
    after = SequenceRunStatus.model_validate({**status.to_wire(), **(started.status or {})})
    assert after.phase == RunPhase.STARTED
    assert after.message is None
    assert [e.name for e in started.create_executions] == ["second-0-t"]


def test_decide_run_aborts_a_queued_run_and_fails_a_bad_key() -> None:
    """A queued run can be aborted; a key that cannot be rendered makes the run Invalid."""
    holder = member("first", 0, key="1", holding=True)
    queued = view("second", 1, {"number": "1"}, phase="Queued")
    aborted = decide_run(
        replace(queued, spec=queued.spec.model_copy(update={"abort": True})),
        SHIPYARD,
        {},
        T0,
        [holder],
    )
    assert aborted.finished
    assert (aborted.status or {})["reason"] == "Aborted"
    invalid = decide_run(view("bad", 1, {}), SHIPYARD, {}, T0, [])
    assert invalid.finished
    assert (invalid.status or {})["reason"] == "Invalid"
    assert "data.number" in (invalid.status or {})["message"]


def test_recorded_admissions_hold_slots_across_replicas() -> None:
    """A run recorded as admitted in the queue's shared record holds its slot even while its
    status does not say so yet (another replica admitted it a moment ago): a run behind it
    waits, and one the record shows finished or gone frees its slot."""
    queue = QueueSpec("k", 1)
    # "b" was admitted by another replica; its status still says Queued (not holding), and
    # "a", older, was in front of it but has since been deleted: without the record, "c"
    # would see nobody holding and only "b" in line, and with limit 2 both would start.
    others = [member("b", 1), member("c", 2)]
    seen = with_admitted(others, ["b"], "k", "c")
    assert [m.name for m in seen if m.holding] == ["b"]
    assert not admit("c", "s", T0 + timedelta(minutes=2), QueueSpec("k", 1), seen).admitted
    # a recorded run that finished holds nothing
    done = with_admitted([replace(member("b", 1), finished=True)], ["b"], "k", "c")
    assert admit("c", "s", T0 + timedelta(minutes=2), queue, done).admitted
    # the run itself recorded: admitted again whatever the others say (a hand-over, a crash
    # between recording its admission and writing its status)
    again = with_admitted([member("a", 0, holding=True), member("z", 9)], ["z"], "k", "z")
    assert admit("z", "s", T0 + timedelta(minutes=9), queue, again).admitted
    # other queues' runs are left as they are
    assert with_admitted([member("o", 0, key="other")], ["z"], "k", "z") == [
        member("o", 0, key="other")
    ]


def test_still_admitted_keeps_runs_that_exist_and_have_not_finished() -> None:
    members = [member("a", 0, holding=True), member("b", 1, finished=True), member("c", 2)]
    assert still_admitted(["c", "b", "gone", "a"], members) == ["a", "c"]


def test_admits_only_a_start_from_not_started() -> None:
    assert admits(None, {"phase": "Started"})
    assert admits("Queued", {"phase": "Suspended", "message": "held"})
    assert not admits("Queued", {"phase": "Queued"})
    assert not admits("Queued", {"phase": "Finished"})
    assert not admits("Started", {"phase": "Started"})
    assert not admits("Pending", None)
