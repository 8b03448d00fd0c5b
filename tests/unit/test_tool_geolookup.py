"""tasks/geolookup: offline reverse geocoding of the GPS position in the run's data, the
location claim, bad input; the HTTP service and the Job."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.helpers import run_async
from tests.photo_tools import ToolServer, module, run_job, triggered

TASK = "geolookup"
PLYMOUTH = {"lat": 50.3755, "lon": -4.1427}


def decide(data: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = module(TASK).decide(data)
    return result


def located(gps: dict[str, float] | None, **claims: Any) -> dict[str, Any]:
    return {"extract-metadata": {"gps": gps, "gps_present": gps is not None}, **claims}


def test_plymouth_harbour_is_found_offline() -> None:
    """The nearest place, region and country come from the package's own table."""
    verdict = decide(located(PLYMOUTH))
    assert verdict["result"] == "pass", verdict
    found = verdict[TASK]
    assert (found["place"], found["region"], found["country"]) == ("Plymouth", "England", "GB")
    assert found["place_distance_km"] < 5
    assert found["location_matches_claim"] is None
    assert "Plymouth, England (GB)" in verdict["message"]


@pytest.mark.parametrize(
    ("claims", "matches"),
    [
        ({"claimedLocation": {"lat": 50.37, "lon": -4.14}}, True),
        ({"claimedLocation": {"lat": 48.8566, "lon": 2.3522}}, False),
        ({"claimedCountry": "gb"}, True),
        ({"claimedCountry": "FR"}, False),
        ({"claimedLocation": {"lat": 50.37, "lon": -4.14}, "claimedCountry": "FR"}, False),
    ],
)
def test_the_claim_is_checked(claims: dict[str, Any], matches: bool) -> None:
    """A claimed place within the distance limit, or the claimed country, matches; a claim
    that does not match makes the task a warning."""
    verdict = decide(located(PLYMOUTH, **claims))
    assert verdict[TASK]["location_matches_claim"] is matches
    assert verdict["result"] == ("pass" if matches else "warning")
    if "claimedLocation" in claims:
        expected = 0.64 if matches or "claimedCountry" in claims else 497
        assert verdict[TASK]["distance_km"] == pytest.approx(expected, rel=0.05)


def test_the_distance_limit_is_a_task_property() -> None:
    """`data.geolookup.maxDistanceKm` widens or narrows what counts as the claimed place."""
    data = located(PLYMOUTH, claimedLocation={"lat": 50.72, "lon": -3.53})  # Exeter, ~58 km
    assert decide(data)[TASK]["location_matches_claim"] is False
    assert decide({**data, TASK: {"maxDistanceKm": 100}})[TASK]["location_matches_claim"] is True


def test_no_gps_is_a_warning_and_the_claim_stays_unknown() -> None:
    """Without a position nothing can be looked up: warning, location_matches_claim null."""
    verdict = decide(located(None, claimedCountry="GB"))
    assert verdict["result"] == "warning"
    assert verdict[TASK] == {"located": False, "location_matches_claim": None}
    assert "no GPS position" in verdict["message"]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({}, "run extract-metadata first"),
        (located(PLYMOUTH, claimedLocation="Plymouth"), "claimedLocation must be"),
        (located(PLYMOUTH, claimedCountry=44), "claimedCountry must be"),
        ({**located(PLYMOUTH), TASK: {"maxDistanceKm": "far"}}, "must be a number"),
    ],
)
def test_bad_input_fails_with_a_plain_message(data: dict[str, Any], words: str) -> None:
    """Missing metadata, malformed claims or properties: fail with a sentence, no crash."""
    verdict = decide(data)
    assert verdict["result"] == "fail"
    assert words in verdict["message"]


def test_out_of_range_gps_counts_as_none() -> None:
    """A position outside the globe is no position."""
    assert decide(located({"lat": 123, "lon": 0}))[TASK]["located"] is False


def test_the_http_service_answers_with_finished() -> None:
    """POST of geolookup.triggered is answered with geolookup.finished and the place."""

    async def exchange(url: str) -> Any:
        event = triggered(TASK, located(PLYMOUTH, claimedCountry="GB"))
        async with aiohttp.ClientSession() as session:
            answer = await session.post(
                url, data=json.dumps(event), headers={"Content-Type": "application/json"}
            )
            return await answer.json(content_type=None)

    with ToolServer(TASK) as server:
        answer = run_async(exchange(server.url))
    assert answer["type"] == "geolookup.finished"
    assert answer["data"]["result"] == "pass"
    assert answer["data"][TASK]["country"] == "GB"
    assert answer["data"][TASK]["location_matches_claim"] is True


def test_the_job_writes_its_verdict_to_the_termination_log(tmp_path: Path) -> None:
    """As a Job the verdict goes to the termination message."""
    done, message = run_job(TASK, triggered(TASK, located(PLYMOUTH)), tmp_path)
    assert done.returncode == 0, done.stderr
    assert message is not None
    assert (message["result"], message[TASK]["place"]) == ("pass", "Plymouth")
