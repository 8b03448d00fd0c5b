"""tasks/extract-metadata: EXIF, GPS, editing software, time gap and ELA on generated photos;
image input (inline, URL, refused addresses, bad input); the HTTP service and the Job."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from tests.helpers import run_async
from tests.photo_tools import ToolServer, image_server, images, inline, module, run_job, triggered

TASK = "extract-metadata"


def decide(data: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = module(TASK).decide(data)
    return result


def test_unedited_photo_has_camera_exif_and_gps() -> None:
    """A camera original: EXIF and GPS present, no editor, no time gap, a low ELA score."""
    verdict = decide(inline(images().unedited_photo()))
    assert verdict["result"] == "pass", verdict
    found = verdict[TASK]
    assert found["exif_present"] is True
    assert found["gps_present"] is True
    assert found["editing_software_detected"] is False
    assert found["capture_modify_gap_seconds"] == 0
    assert 0 < found["ela_score"] < 2
    assert found["camera"] == {"make": "FUJIFILM", "model": "X100V"}
    assert found["gps"] == {"lat": pytest.approx(50.3755, abs=1e-4), "lon": -4.1427}
    assert found["captured_at"] == "2026-11-20T09:41:07"
    assert (found["width"], found["height"], found["format"]) == (640, 480, "JPEG")
    assert "FUJIFILM X100V" in verdict["message"]


def test_photoshop_is_detected_and_gps_is_missing() -> None:
    """The edited photo names Adobe Photoshop as its software and has no camera or GPS."""
    found = decide(inline(images().edited_photo()))[TASK]
    assert found["editing_software_detected"] is True
    assert found["editor"] == "Adobe Photoshop 25.0 (Windows)"
    assert found["gps_present"] is False
    assert found["capture_modify_gap_seconds"] is None
    assert found["camera"] == {"make": None, "model": None}


def test_a_stripped_photo_has_no_exif() -> None:
    """Metadata removed: exif_present false, and the message says what that means."""
    verdict = decide(inline(images().stripped_photo()))
    assert verdict[TASK]["exif_present"] is False
    assert verdict[TASK]["editing_software_detected"] is False
    assert "no EXIF" in verdict["message"]


@pytest.mark.parametrize(
    ("software", "detected"),
    [
        ("GIMP 2.10.34", True),
        ("Snapseed 2.0", True),
        ("Adobe Lightroom 7.1", True),
        ("1.02", False),
    ],
)
def test_known_editors_are_matched_in_the_software_tag(software: str, detected: bool) -> None:
    """Editors are recognised anywhere in the Software tag; a camera firmware is not one."""
    gen = images()
    block = gen.exif(make="Canon", software=software)
    found = decide(inline(gen.jpeg(gen.scene(1), block=block)))[TASK]
    assert found["editing_software_detected"] is detected


def test_capture_modify_gap_is_the_seconds_between_the_two_times() -> None:
    """DateTime minus DateTimeOriginal, in seconds (negative would mean modified before taken)."""
    from datetime import datetime

    gen = images()
    block = gen.exif(taken=datetime(2026, 1, 1, 10, 0), modified=datetime(2026, 1, 2, 10, 0, 30))
    found = decide(inline(gen.jpeg(gen.scene(2), block=block)))[TASK]
    assert found["capture_modify_gap_seconds"] == 86430


def test_ela_is_higher_for_a_picture_never_saved_at_the_probe_quality() -> None:
    """A picture saved at quality 100 changes more when re-saved at 90 than one saved at 70."""
    gen = images()
    ela = module(TASK).ela_score
    fine = Image.open(io.BytesIO(gen.jpeg(gen.scene(3), quality=100)))
    coarse = Image.open(io.BytesIO(gen.jpeg(gen.scene(3), quality=70)))
    assert ela(fine) > ela(coarse) > 0


def test_png_with_xmp_is_read() -> None:
    """A PNG works too; an XMP packet's CreatorTool counts as editing software."""
    out = io.BytesIO()
    xmp = '<x:xmpmeta><rdf:Description xmp:CreatorTool="Adobe Photoshop 24.1"/></x:xmpmeta>'
    images().scene(4).save(out, "PNG", pnginfo=_png_xmp(xmp))
    found = decide(inline(out.getvalue()))[TASK]
    assert found["format"] == "PNG"
    assert found["xmp_present"] is True
    assert found["xmp"]["CreatorTool"] == "Adobe Photoshop 24.1"
    assert found["editing_software_detected"] is True


def _png_xmp(xmp: str) -> Any:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp)
    return info


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({}, "no image in the request"),
        ({"image": {"data": base64.b64encode(b"hello").decode()}}, "not an image"),
        ({"image": {"data": "%%%"}}, "empty"),
        ({"image": "ftp://example.org/a.jpg"}, "not an http or https URL"),
        ({"image": {"url": 42}}, "must be text"),
        ({"image": {"data": ""}}, "no image in the request"),
    ],
)
def test_bad_input_fails_with_a_plain_message(data: dict[str, Any], words: str) -> None:
    """No image, not an image, not base64, a URL that is not http(s): fail, never a crash."""
    verdict = decide(data)
    assert verdict["result"] == "fail"
    assert words in verdict["message"]


def test_loopback_urls_are_refused_unless_the_tool_allows_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A URL on a loopback address is refused by default and fetched when the tool's
    environment allows private addresses."""
    monkeypatch.delenv("TOOL_ALLOW_PRIVATE_URLS", raising=False)
    with image_server({"p.jpg": images().unedited_photo()}) as base:
        refused = decide({"image": f"{base}/p.jpg"})
        assert refused["result"] == "fail"
        assert "private or local address" in refused["message"]
        monkeypatch.setenv("TOOL_ALLOW_PRIVATE_URLS", "true")
        allowed = decide({"image": {"url": f"{base}/p.jpg"}})
        assert allowed["result"] == "pass", allowed
        assert allowed[TASK]["gps_present"] is True
        missing = decide({"image": f"{base}/nothing.jpg"})
        assert missing["result"] == "fail"
        assert "HTTP 404" in missing["message"]


def test_images_over_the_size_limit_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inline and fetched images larger than TOOL_MAX_IMAGE_BYTES fail."""
    monkeypatch.setenv("TOOL_MAX_IMAGE_BYTES", "1000")
    monkeypatch.setenv("TOOL_ALLOW_PRIVATE_URLS", "true")
    photo = images().unedited_photo()
    assert "larger than 1000 bytes" in decide(inline(photo))["message"]
    with image_server({"p.jpg": photo}) as base:
        assert "larger than 1000 bytes" in decide({"image": f"{base}/p.jpg"})["message"]


def test_the_http_service_answers_with_finished_in_both_modes() -> None:
    """Structured and binary `.triggered` get `extract-metadata.finished` in the response,
    answering the event's id; a body that is no CloudEvent gets 400; /healthz answers."""
    data = inline(images().unedited_photo())

    async def exchange(url: str) -> list[Any]:
        event = triggered(TASK, data)
        async with aiohttp.ClientSession() as session:
            structured = await session.post(
                url,
                data=json.dumps(event),
                headers={"Content-Type": "application/cloudevents+json"},
            )
            binary_headers = {f"ce-{k}": v for k, v in event.items() if k != "data"}
            binary = await session.post(
                url,
                data=json.dumps(data),
                headers={"Content-Type": "application/json", **binary_headers},
            )
            bad = await session.post(url, data=b"[1, 2]")
            health = await session.get(url + "healthz")
            return [
                await structured.json(content_type=None),
                await binary.json(content_type=None),
                bad.status,
                health.status,
            ]

    with ToolServer(TASK) as server:
        structured, binary, bad, health = run_async(exchange(server.url))
    for answer in (structured, binary):
        assert answer["type"] == "extract-metadata.finished"
        assert answer["triggeredid"] == "ns/run-0-extract-metadata/p/1"
        assert answer["slipwaycontext"] == "ctx-1"
        assert answer["data"]["result"] == "pass"
        assert answer["data"][TASK]["exif_present"] is True
    assert (bad, health) == (400, 200)


def test_the_job_writes_its_verdict_to_the_termination_log(tmp_path: Path) -> None:
    """As a Job (SLIPWAY_EVENT), the verdict and output go to the termination message; a
    missing event exits 2 with the reason on stderr."""
    event = triggered(TASK, inline(images().unedited_photo()))
    done, message = run_job(TASK, event, tmp_path)
    assert done.returncode == 0, done.stderr
    assert message is not None
    assert message["result"] == "pass"
    assert message[TASK]["gps"]["lat"] == pytest.approx(50.3755, abs=1e-4)
    failed, message = run_job(TASK, triggered(TASK, {}), tmp_path)
    assert failed.returncode == 0
    assert message is not None
    assert message["result"] == "fail"
    missing, _ = run_job(TASK, None, tmp_path / "none")
    assert missing.returncode == 2
    assert "SLIPWAY_EVENT is not set" in missing.stderr


def test_a_large_output_is_cut_to_its_metrics_in_the_termination_message() -> None:
    """Over 4096 bytes, nested output is dropped first so the metrics survive; then all."""
    import slipway_tool  # on sys.path through the tool's module

    metrics = {"exif_present": True, "ela_score": 0.4, "xmp": {"History": "x" * 5000}}
    cut = json.loads(slipway_tool.termination_message({"result": "pass", TASK: metrics}))
    assert cut[TASK] == {"exif_present": True, "ela_score": 0.4}
    assert "truncated" in cut
    huge = {"result": "pass", "message": "m", TASK: {"a": "x" * 5000}}
    assert json.loads(slipway_tool.termination_message(huge)) == {
        "result": "pass",
        "message": "m",
        "truncated": "the full output did not fit the 4096-byte termination message",
    }


def test_a_name_that_resolves_to_loopback_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """`localhost` is refused like 127.0.0.1: the connected address is what is checked."""
    monkeypatch.delenv("TOOL_ALLOW_PRIVATE_URLS", raising=False)
    with image_server({"p.jpg": images().unedited_photo()}) as base:
        verdict = decide({"image": base.replace("127.0.0.1", "localhost") + "/p.jpg"})
    assert verdict["result"] == "fail"
    assert "private or local address" in verdict["message"]
