"""History retention: count limits per stage and sequence, TTL, defaults, and the
evaluation history a later evaluation still compares with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from slipway.api.common import Result
from slipway.api.shipyard import History
from slipway.api.slo import Comparison
from slipway.engine.retention import FinishedRun, Policy, needed_runs, plan, policy_for
from slipway.engine.scoring import EarlierEvaluation

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
DEFAULTS = Policy(successful_runs=2, failed_runs=1)


def run(
    name: str,
    minute: int,
    result: Result | None = Result.PASS,
    sequence: str = "q",
    shipyard: str = "s",
) -> FinishedRun:
    return FinishedRun(name, shipyard, "dev", sequence, result, T0 + timedelta(minutes=minute))


def test_oldest_beyond_the_counts_go_first() -> None:
    """Two successful and one failed kept per sequence; the rest deleted oldest first, each
    with its reason; warning counts as successful, a missing result as failed."""
    runs = [
        run("p1", 1),
        run("p2", 2),
        run("w3", 3, Result.WARNING),
        run("p4", 4),
        run("f1", 1, Result.FAIL),
        run("f2", 2, None),
    ]
    decided = plan(runs, {}, DEFAULTS, set(), T0 + timedelta(hours=1))
    assert [d.name for d in decided.deletions] == ["f1", "p1", "p2"]
    assert decided.deletions[1].why == "beyond successfulRuns 2"
    assert decided.deletions[0].why == "beyond failedRuns 1"


def test_runs_kept_in_git_are_never_deleted_and_count_toward_no_limit() -> None:
    """Argo CD would recreate a deleted run that is still in git (and run it again): such runs
    are left to git, and the limits apply to the other runs alone."""
    runs = [
        FinishedRun("git1", "s", "dev", "q", Result.PASS, T0, in_git=True),
        FinishedRun("git2", "s", "dev", "q", Result.FAIL, T0, in_git=True),
        run("p1", 1),
        run("p2", 2),
        run("p3", 3),
    ]
    decided = plan(runs, {}, DEFAULTS, set(), T0 + timedelta(days=400))
    assert [d.name for d in decided.deletions] == ["p1"]


def test_sequences_and_shipyards_count_separately_and_use_their_policy() -> None:
    """Each stage/sequence has its own count; a Shipyard's history wins over the defaults."""
    runs = [
        run("a1", 1),
        run("a2", 2),
        run("a3", 3),
        run("b1", 1, sequence="other"),
        run("c1", 1, shipyard="t"),
        run("c2", 2, shipyard="t"),
    ]
    policies = {"t": policy_for(History(successful_runs=1), DEFAULTS)}
    decided = plan(runs, policies, DEFAULTS, set(), T0)
    assert [d.name for d in decided.deletions] == ["a1", "c1"]


def test_ttl_deletes_old_runs_and_says_when_the_next_is_due() -> None:
    """ttlAfterFinished deletes what finished long enough ago; next_due is the next one."""
    policy = policy_for(History(ttl_after_finished="10m"), Policy(100, 100))
    runs = [run("old", 0), run("young", 5)]
    decided = plan(runs, {"s": policy}, DEFAULTS, set(), T0 + timedelta(minutes=12))
    assert [d.name for d in decided.deletions] == ["old"]
    assert "ttlAfterFinished" in decided.deletions[0].why
    assert decided.next_due == T0 + timedelta(minutes=15)


def test_policy_for_fills_unset_fields_from_defaults() -> None:
    merged = policy_for(History(failed_runs=0), Policy(5, 6, timedelta(hours=1)))
    assert merged == Policy(5, 0, timedelta(hours=1))
    assert policy_for(None, DEFAULTS) == DEFAULTS


def evaluation(name: str, result: Result, invalidated: bool = False) -> EarlierEvaluation:
    return EarlierEvaluation(result=result, invalidated=invalidated, id=name)


SCOPE = ("s", "dev", "q", "gate")


def test_needed_runs_keep_the_prefix_each_comparison_reads() -> None:
    """The newest entries up to the oldest one any serving SLO compares with are needed,
    invalidated marks between them included; older ones are not."""
    history = [  # newest first
        evaluation("e6", Result.PASS),
        evaluation("e5", Result.FAIL, invalidated=True),
        evaluation("e4", Result.FAIL),
        evaluation("e3", Result.PASS),
        evaluation("e2", Result.PASS),
        evaluation("e1", Result.PASS),
    ]
    run_of = {f"e{i}": f"r{i}" for i in range(1, 7)}
    two_passes = Comparison(
        compare_with="several_results",
        number_of_comparison_results=2,
        include_result_with_score="pass",
    )
    assert needed_runs({SCOPE: history}, {SCOPE: [two_passes]}, run_of) == {"r6", "r5", "r4", "r3"}
    single = Comparison(compare_with="single_result")
    assert needed_runs({SCOPE: history}, {SCOPE: [single]}, run_of) == {"r6"}
    assert needed_runs({SCOPE: history}, {SCOPE: [single, two_passes]}, run_of) == {
        "r6",
        "r5",
        "r4",
        "r3",
    }
    assert needed_runs({SCOPE: history}, {}, run_of) == set()


def test_needed_runs_are_never_deleted() -> None:
    """A run the limits would delete stays when an evaluation needs it, and is reported."""
    runs = [run("r1", 1), run("r2", 2), run("r3", 3)]
    decided = plan(runs, {"s": Policy(1, 1)}, DEFAULTS, {"r1"}, T0)
    assert [d.name for d in decided.deletions] == ["r2"]
    assert decided.kept_for_evaluations == ["r1"]
