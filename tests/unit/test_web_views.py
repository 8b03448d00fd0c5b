"""The web page's views of capabilities and runs, and the upload store (no cluster)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from slipway.api.shipyard import Sequence
from slipway.gateway.uploads import (
    UploadError,
    UploadStore,
    attach_uploads,
    media_type_fits,
    referenced,
    sniff,
    token_matches,
)
from slipway.gateway.views import capabilities, doubts, run_view

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32


def shipyard() -> dict[str, Any]:
    return {
        "metadata": {"name": "osint", "namespace": "ns"},
        "spec": {
            "stages": [
                {
                    "name": "dev",
                    "sequences": [
                        {
                            "name": "titled",
                            "title": "Check it",
                            "description": "Plain words.",
                            "inputs": {"properties": {"x": {"type": "string"}}},
                            "tasks": [{"name": "a"}, {"name": "b"}],
                        },
                        {"name": "untitled", "tasks": [{"name": "a"}]},
                    ],
                }
            ]
        },
    }


def test_only_titled_sequences_are_capabilities() -> None:
    [found] = capabilities("ns", shipyard(), prefix="dev.slipway.")
    assert found["id"] == "ns/osint/dev/titled"
    assert found["title"] == "Check it"
    assert found["tasks"] == ["a", "b"]
    assert found["eventType"] == "dev.slipway.dev.titled.triggered"
    assert found["inputs"]["properties"]["x"] == {"type": "string"}


def test_a_run_view_lists_every_task_with_its_state_and_the_tools_messages() -> None:
    run = {
        "metadata": {
            "name": "r",
            "namespace": "ns",
            "annotations": {"slipway.dev/triggered-by": "alice"},
        },
        "spec": {
            "shipyard": "osint",
            "stage": "dev",
            "sequence": "titled",
            "data": {"photo": {"url": "http://x", "token": "secret", "sha256": "ab" * 32}},
        },
        "status": {
            "phase": "Started",
            "sequence": {
                "name": "titled",
                "title": "Check it",
                "tasks": [{"name": "a"}, {"name": "b"}],
            },
            "tasks": [{"name": "a", "index": 0, "execution": "r-0-a", "phase": "Started"}],
        },
    }
    execution = {
        "metadata": {"name": "r-0-a", "labels": {"slipway.dev/run": "r"}},
        "status": {"providers": [{"name": "p", "lastStatusMessage": "<b>working</b>"}]},
    }
    view = run_view(run, [execution])
    assert view["title"] == "Check it"
    assert view["triggeredBy"] == "alice"
    assert [(t["name"], t["state"]) for t in view["tasks"]] == [("a", "running"), ("b", "waiting")]
    assert view["tasks"][0]["statusMessages"] == ["<b>working</b>"]
    assert not view["finished"]
    assert "secret" not in str(view)  # the upload token is not shown


def test_doubts_are_the_objectives_not_met() -> None:
    data = {
        "evaluation": {
            "objectives": [
                {"sli": "a", "displayName": "No editing software", "status": "fail", "value": 1},
                {"sli": "b", "status": "pass", "value": 0},
                {"sli": "c", "status": "warning", "value": None},
            ]
        }
    }
    assert doubts(data) == [
        {"check": "No editing software", "status": "fail", "value": 1},
        {"check": "c", "status": "warning", "value": None},
    ]


def test_media_types() -> None:
    assert media_type_fits("image/*", "image/jpeg")
    assert media_type_fits("*/*", "application/pdf")
    assert not media_type_fits("image/*", "text/html")
    assert not media_type_fits("image/png", "image/jpeg")
    assert not media_type_fits("image/*", "")
    assert sniff(PNG) == "image/png"
    assert sniff(JPEG) == "image/jpeg"
    assert sniff(b"<html>") is None


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), 7):
        yield data[i : i + 7]


def test_the_store_keeps_files_by_sha256_and_checks_size_and_type(tmp_path: Path) -> None:
    store = UploadStore(tmp_path, max_bytes=100)
    stored = asyncio.run(store.save(_chunks(PNG), "image/png", "image/*"))
    assert stored.sha256 == hashlib.sha256(PNG).hexdigest()
    assert store.find(stored.sha256) == stored
    assert store.file(stored.sha256).read_bytes() == PNG
    with pytest.raises(UploadError) as big:
        asyncio.run(store.save(_chunks(PNG * 10), "image/png", "image/*"))
    assert big.value.status == 413
    with pytest.raises(UploadError) as lying:  # says PNG, is HTML
        asyncio.run(store.save(_chunks(b"<html><script>"), "image/png", "image/*"))
    assert lying.value.status == 415
    with pytest.raises(UploadError) as declared:
        asyncio.run(store.save(_chunks(PNG), "text/plain", "image/*"))
    assert declared.value.status == 415
    assert list(store.ages()) == [stored.sha256]  # nothing left behind by the refusals
    store.remove(stored.sha256)
    assert store.find(stored.sha256) is None


def test_a_trigger_naming_an_upload_gets_a_run_scoped_url_and_token(tmp_path: Path) -> None:
    store = UploadStore(tmp_path, max_bytes=1000)
    stored = asyncio.run(store.save(_chunks(JPEG), "image/jpeg", "image/*"))
    sequence = Sequence.model_validate(
        {
            "name": "photo",
            "inputs": {"properties": {"image": {"contentMediaType": "image/*"}}},
            "tasks": [{"name": "a"}],
        }
    )
    data = {"image": {"upload": stored.sha256, "name": "me.jpg"}, "other": 1}
    out = attach_uploads(store, "http://gw:8080/", "ns", "run-1", sequence, data)
    image = out["image"]
    assert (
        image["url"]
        == f"http://gw:8080/v1/namespaces/ns/sequenceruns/run-1/uploads/{stored.sha256}"
    )
    assert image["contentType"] == "image/jpeg"
    assert image["name"] == "me.jpg"
    assert out["other"] == 1
    assert referenced(out) == {stored.sha256}
    assert token_matches(out, stored.sha256, image["token"])
    assert not token_matches(out, stored.sha256, "guess")
    again = attach_uploads(store, "http://gw:8080", "ns", "run-2", sequence, data)
    assert again["image"]["token"] != image["token"]  # one token per run
    with pytest.raises(UploadError, match="no such upload"):
        attach_uploads(store, "http://gw", "ns", "r", sequence, {"image": {"upload": "0" * 64}})


def test_findings_are_each_tools_own_words() -> None:
    run = {
        "metadata": {"name": "r", "namespace": "ns"},
        "spec": {},
        "status": {
            "phase": "Finished",
            "result": "pass",
            "tasks": [
                {
                    "name": "a",
                    "index": 0,
                    "execution": "r-0-a",
                    "phase": "Finished",
                    "message": "p: pass - fine",
                },
                {"name": "b", "index": 1, "phase": "Finished", "message": "b's message"},
            ],
        },
    }
    execution = {
        "metadata": {"name": "r-0-a", "labels": {"slipway.dev/run": "r"}},
        "status": {"providers": [{"name": "p", "phase": "Finished", "message": "fine"}]},
    }
    view = run_view(run, [execution])
    assert [t["findings"] for t in view["tasks"]] == [["fine"], ["b's message"]]
