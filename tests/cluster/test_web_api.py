"""The gateway's routes for the web page, on the real control plane with the real operator:
who am I, the capabilities RBAC allows, my runs (newest first, paged), live progress as
Server-Sent Events, inputs checked (422 at the gateway, `Invalid` for a kubectl-applied run,
same message), and uploads (type and size checked, fetched by tools with a run-scoped token,
removed once no run refers to them)."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes import client

from slipway.api.inputs import Inputs
from slipway.engine.inputs import check_inputs, problems_message
from tests.cluster.objects import Cluster, sequence, stage
from tests.cluster.test_gateway import request, service_account_token
from tests.conftest import OperatorProcess
from tests.helpers import run_async, wait_for
from tests.photo_tools import images
from tests.tools import Tool

pytestmark = pytest.mark.usefixtures("crds")

PHONE_INPUTS = {
    "required": ["number"],
    "properties": {
        "number": {
            "type": "string",
            "title": "Phone number",
            "pattern": "^[+0-9][0-9 ]{4,30}$",
            "examples": ["+44 20 7946 0958"],
        }
    },
}
PHOTO_INPUTS = {
    "required": ["image"],
    "properties": {"image": {"type": "string", "contentMediaType": "image/*"}},
}


@pytest.fixture
def web_operator(namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    """The operator with its upload folder in the test's tmp_path and a fast sweep."""
    process = OperatorProcess(
        namespace,
        tmp_path / "operator.log",
        env={
            "SLIPWAY_UPLOAD_DIR": str(tmp_path / "uploads"),
            "SLIPWAY_UPLOAD_GRACE_SECONDS": "5",
            "SLIPWAY_UPLOAD_SWEEP_SECONDS": "1",
        },
    )
    process.start()
    yield process
    process.stop()
    assert "Traceback" not in process.log(), process.log()


@pytest.fixture
def site(k8s: Cluster, tool: Tool) -> None:
    k8s.shipyard(
        "osint",
        [
            stage(
                "dev",
                sequence("phone", "checknumber", title="Check a phone", inputs=PHONE_INPUTS),
                sequence("photo", "look", title="Check a photo", inputs=PHOTO_INPUTS),
                sequence("hidden", "checknumber"),
            )
        ],
    )
    k8s.provider("phone-checker", "checknumber", tool.url)
    k8s.provider("looker", "look", tool.url)


def event(sequence_: str, **data: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "source": "tests/web",
        "type": f"dev.{sequence_}.triggered",
        "datacontenttype": "application/json",
        "data": data,
    }


def raw(
    method: str, url: str, token: str | None, body: bytes, content_type: str
) -> tuple[int, Any]:
    async def call() -> tuple[int, Any]:
        headers = {"Content-Type": content_type}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, url, data=io.BytesIO(body), headers=headers) as reply,
        ):
            data = await reply.read()
            try:
                return reply.status, json.loads(data)
            except ValueError:
                return reply.status, data

    return run_async(call())


@pytest.mark.usefixtures("site")
def test_whoami_and_the_capabilities_rbac_allows(
    api_client: client.ApiClient, k8s: Cluster, web_operator: OperatorProcess
) -> None:
    """whoami names the token's identity (401 without or with a bad one); capabilities are
    the titled sequences of namespaces where the caller may create runs, and none elsewhere."""
    base = web_operator.gateway_url
    person = service_account_token(api_client, k8s.ns, "person", ["create", "get"])
    reader = service_account_token(api_client, k8s.ns, "reader", ["get"])
    assert request("GET", f"{base}/v1/whoami")[0] == 401
    status, body = request("GET", f"{base}/v1/whoami", "not-a-token")
    assert status == 401
    assert body["error"] == "unauthorized"
    status, body = request("GET", f"{base}/v1/whoami", person)
    assert status == 200
    assert body["username"] == f"system:serviceaccount:{k8s.ns}:person"
    status, body = request("GET", f"{base}/v1/capabilities", person)
    assert status == 200
    found = {(c["sequence"], c["title"]) for c in body["items"]}
    assert found == {("phone", "Check a phone"), ("photo", "Check a photo")}
    phone = next(c for c in body["items"] if c["sequence"] == "phone")
    assert phone["inputs"]["properties"]["number"]["examples"] == ["+44 20 7946 0958"]
    assert phone["eventType"] == "dev.phone.triggered"
    status, body = request("GET", f"{base}/v1/capabilities", reader)
    assert (status, body["items"]) == (200, [])


@pytest.mark.usefixtures("site")
def test_trigger_data_is_checked_against_the_inputs_and_a_kubectl_run_gets_the_same_message(
    api_client: client.ApiClient, k8s: Cluster, web_operator: OperatorProcess
) -> None:
    base = web_operator.gateway_url
    person = service_account_token(api_client, k8s.ns, "person", ["create", "get"])
    events = f"{base}/v1/namespaces/{k8s.ns}/events"
    status, body = request("POST", events, person, event("phone", number="call me"))
    assert status == 422, body
    assert body["error"] == "invalid_data"
    assert body["fields"] == {
        "number": "is not in the expected form (for example +44 20 7946 0958)"
    }
    status, body = request("POST", events, person, event("phone"))
    assert (status, body["fields"]) == (422, {"number": "is required"})
    assert k8s.items("sequenceruns") == []
    expected = problems_message(
        check_inputs(Inputs.model_validate(PHONE_INPUTS), {"number": "call me"})
    )
    assert body["message"] != expected  # a different problem, a different message
    k8s.run("by-kubectl", "osint", "dev", "phone", {"number": "call me"})
    status_ = k8s.finished("by-kubectl")
    assert (status_["result"], status_["reason"]) == ("fail", "Invalid")
    assert status_["message"] == expected
    status, body = request("POST", events, person, event("phone", number="call me"))
    assert body["message"] == expected


@pytest.mark.usefixtures("site")
def test_my_runs_newest_first_paged_and_live_progress_as_server_sent_events(
    api_client: client.ApiClient, k8s: Cluster, web_operator: OperatorProcess
) -> None:
    base = web_operator.gateway_url
    person = service_account_token(api_client, k8s.ns, "person", ["create", "get"])
    other = service_account_token(api_client, k8s.ns, "other", ["create", "get"])
    events = f"{base}/v1/namespaces/{k8s.ns}/events"
    mine = []
    for n in range(3):
        status, body = request("POST", events, person, event("phone", number=f"+44 20 7946 000{n}"))
        assert status == 202, body
        mine.append(body["run"])
    status, body = request("POST", events, other, event("phone", number="+44 20 7946 0999"))
    assert status == 202
    run = k8s.get("sequenceruns", mine[0])
    assert run["metadata"]["annotations"]["slipway.dev/triggered-by"].endswith(":person")
    for name in mine:
        k8s.finished(name)
    listing = f"{base}/v1/namespaces/{k8s.ns}/sequenceruns?mine=true&limit=2"
    status, page1 = request("GET", listing, person)
    assert status == 200, page1
    assert page1["total"] == 3
    assert page1["continue"] == "2"
    status, page2 = request("GET", f"{listing}&continue=2", person)
    names = [r["name"] for r in page1["items"] + page2["items"]]
    assert sorted(names) == sorted(mine)
    created = [r["createdAt"] for r in page1["items"] + page2["items"]]
    assert created == sorted(created, reverse=True)
    assert page1["items"][0]["title"] == "Check a phone"
    assert page2["continue"] is None
    # Everyone's runs need `list`, which the person does not have.
    status, body = request("GET", f"{base}/v1/namespaces/{k8s.ns}/sequenceruns", person)
    assert status == 403

    # Live progress: a new run followed from its start to its end.
    status, body = request("POST", events, person, event("phone", number="+44 20 7946 0958"))
    url = f"{base}/v1/namespaces/{k8s.ns}/sequenceruns/{body['run']}/events"
    received = run_async(read_stream(url, person))
    kinds = [kind for kind, _ in received]
    assert kinds[-1] == "end"
    assert set(kinds[:-1]) <= {"run"}
    final = received[-1][1]
    assert final["finished"]
    assert final["result"] == "pass"
    # The tool's status message ("half way") reached the page's view.
    assert any("half way" in t["statusMessages"] for _, v in received for t in v["tasks"])
    # A finished run's stream is one `end` event.
    again = run_async(read_stream(url, person))
    assert [k for k, _ in again] == ["end"]
    assert (
        request("GET", f"{base}/v1/namespaces/{k8s.ns}/sequenceruns/nope/events", person)[0] == 404
    )
    assert request("GET", url, None)[0] == 401


async def read_stream(url: str, token: str) -> list[tuple[str, dict[str, Any]]]:
    received: list[tuple[str, dict[str, Any]]] = []
    timeout = aiohttp.ClientTimeout(total=90)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(url, headers={"Authorization": f"Bearer {token}"}) as reply,
    ):
        assert reply.status == 200
        assert reply.headers["Content-Type"].startswith("text/event-stream")
        kind = ""
        async for line in reply.content:
            text = line.decode().rstrip("\n")
            if text.startswith("event:"):
                kind = text[6:].strip()
            elif text.startswith("data:"):
                received.append((kind, json.loads(text[5:])))
    return received


@pytest.mark.usefixtures("site")
def test_uploads_are_checked_fetched_with_the_runs_token_and_removed_with_the_run(
    api_client: client.ApiClient,
    k8s: Cluster,
    web_operator: OperatorProcess,
    tool: Tool,
    tmp_path: Path,
) -> None:
    base = web_operator.gateway_url
    person = service_account_token(api_client, k8s.ns, "person", ["create", "get"])
    reader = service_account_token(api_client, k8s.ns, "reader", ["get"])
    photo = images().unedited_photo()
    uploads = f"{base}/v1/namespaces/{k8s.ns}/uploads?capability=osint/dev/photo&input=image"
    assert raw("POST", uploads, reader, photo, "image/jpeg")[0] == 403
    status, body = raw("POST", uploads, person, b"<html>not a photo</html>", "image/jpeg")
    assert status == 415, body
    status, body = raw("POST", uploads, person, b"%PDF-1.4", "application/pdf")
    assert status == 415, body
    status, body = raw("POST", uploads, person, photo * 400, "image/jpeg")
    assert status == 413, body
    wrong = f"{base}/v1/namespaces/{k8s.ns}/uploads?capability=osint/dev/phone&input=number"
    assert raw("POST", wrong, person, photo, "image/jpeg")[0] == 422
    status, body = raw("POST", uploads, person, photo, "image/jpeg")
    assert status == 201, body
    sha = body["upload"]
    stored = tmp_path / "uploads" / "sha256" / sha
    assert stored.read_bytes() == photo

    status, answer = request(
        "POST",
        f"{base}/v1/namespaces/{k8s.ns}/events",
        person,
        event("photo", image={"upload": sha, "name": "me.jpg"}),
    )
    assert status == 202, answer
    run = answer["run"]
    k8s.finished(run)
    image = k8s.get("sequenceruns", run)["spec"]["data"]["image"]
    assert image["url"] == f"{base}/v1/namespaces/{k8s.ns}/sequenceruns/{run}/uploads/{sha}"
    assert image["contentType"] == "image/jpeg"
    # The tool got the URL and the token in its event, and can fetch the file with it only.
    [triggered] = tool.events("look")
    assert triggered["data"]["image"]["token"] == image["token"]
    status, got = raw("GET", image["url"], image["token"], b"", "text/plain")
    assert (status, got) == (200, photo)
    assert raw("GET", image["url"], person, b"", "text/plain")[0] == 403
    assert raw("GET", image["url"], None, b"", "text/plain")[0] == 401
    # Another run's token does not open this run's file.
    status, second = request(
        "POST",
        f"{base}/v1/namespaces/{k8s.ns}/events",
        person,
        event("photo", image={"upload": sha}),
    )
    other_token = k8s.get("sequenceruns", second["run"])["spec"]["data"]["image"]["token"]
    assert raw("GET", image["url"], other_token, b"", "text/plain")[0] == 403
    # Kept while a run refers to it; removed once none does.
    k8s.finished(second["run"])
    k8s.custom.delete_namespaced_custom_object(
        "slipway.dev", "v1alpha1", k8s.ns, "sequenceruns", run
    )
    assert stored.exists()
    k8s.custom.delete_namespaced_custom_object(
        "slipway.dev", "v1alpha1", k8s.ns, "sequenceruns", second["run"]
    )
    wait_for(lambda: not stored.exists(), timeout=30, message="the upload was removed")
    assert raw("GET", image["url"], image["token"], b"", "text/plain")[0] == 403
