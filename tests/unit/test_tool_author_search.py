"""tasks/author-search: perceptual-hash look-up in a generated catalogue, EXIF credit, bad
input and a bad catalogue; the HTTP service and the Job."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.helpers import run_async
from tests.photo_tools import ToolServer, images, inline, module, run_job, triggered

TASK = "author-search"


@pytest.fixture
def catalogue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A catalogue generated for the test, configured through the environment."""
    directory = images().write_catalogue(tmp_path / "catalogue")
    monkeypatch.setenv("AUTHOR_SEARCH_CATALOGUE", str(directory))
    return directory


def decide(data: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = module(TASK).decide(data)
    return result


def test_a_near_copy_matches_its_catalogue_original(catalogue: Path) -> None:
    """The scaled, brightened, recompressed copy is found with its author and first-seen date,
    and its EXIF credit is reported."""
    verdict = decide(inline(images().catalogue_copy()))
    assert verdict["result"] == "pass", verdict
    found = verdict[TASK]
    assert found["known_author_match"] is True
    assert found["nearest_copy_distance"] <= 4
    assert found["matches"] == 1
    assert (found["author"], found["first_seen"]) == ("Jane Doe", "2019-06-14")
    assert found["nearest"][0]["file"] == "known-1.jpg"
    assert found["artist"] == "Jane Doe"
    assert "Jane Doe" in found["copyright"]
    assert "first seen 2019-06-14" in verdict["message"]


@pytest.mark.parametrize("photo", ["unedited_photo", "edited_photo"])
def test_unrelated_photos_match_nothing(catalogue: Path, photo: str) -> None:
    """Other generated photos are far (over 20 of 64 bits) from every catalogue entry."""
    found = decide(inline(getattr(images(), photo)()))[TASK]
    assert found["known_author_match"] is False
    assert found["matches"] == 0
    assert found["nearest_copy_distance"] > 20
    assert found["artist"] is None


def test_the_match_distance_is_a_task_property(catalogue: Path) -> None:
    """`data.author-search.maxDistance` 64 makes every catalogue photo a match."""
    data = {**inline(images().unedited_photo()), TASK: {"maxDistance": 64}}
    assert decide(data)[TASK]["matches"] == 4


def test_without_a_catalogue_the_task_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """No catalogue configured, or one that cannot be read: fail saying so."""
    monkeypatch.delenv("AUTHOR_SEARCH_CATALOGUE", raising=False)
    assert "no catalogue configured" in decide(inline(b"x"))["message"]
    monkeypatch.setenv("AUTHOR_SEARCH_CATALOGUE", "/nonexistent/catalogue")
    verdict = decide(inline(images().unedited_photo()))
    assert verdict["result"] == "fail"
    assert "cannot be read" in verdict["message"]


def test_bad_input_fails_with_a_plain_message(catalogue: Path) -> None:
    """No image, or bytes that are not an image: fail with a sentence."""
    assert "no image in the request" in decide({})["message"]
    assert "not an image" in decide(inline(b"GIF89a nonsense"))["message"]


def test_the_http_service_answers_with_finished(catalogue: Path) -> None:
    """POST of author-search.triggered is answered with author-search.finished."""

    async def exchange(url: str) -> Any:
        event = triggered(TASK, inline(images().catalogue_copy()))
        async with aiohttp.ClientSession() as session:
            answer = await session.post(url + "events", data=json.dumps(event))
            return await answer.json(content_type=None)

    with ToolServer(TASK) as server:
        answer = run_async(exchange(server.url))
    assert answer["type"] == "author-search.finished"
    assert answer["data"][TASK]["known_author_match"] is True


def test_the_job_reads_the_catalogue_from_the_environment(catalogue: Path, tmp_path: Path) -> None:
    """As a Job, with AUTHOR_SEARCH_CATALOGUE, the verdict goes to the termination message."""
    event = triggered(TASK, inline(images().catalogue_copy()))
    done, message = run_job(TASK, event, tmp_path, AUTHOR_SEARCH_CATALOGUE=str(catalogue))
    assert done.returncode == 0, done.stderr
    assert message is not None
    assert message[TASK]["author"] == "Jane Doe"
