"""The web page in a real browser (Debian's chromium, driven by Playwright) against the real
gateway, operator, tools of tasks/ and control plane: sign-in, the catalogue RBAC allows, the
phone and photo capabilities from an empty page to their verdicts, field errors before and
after submitting, live progress with the tools' messages, past runs and shared links, a tool's
HTML shown as text, the keyboard alone, a phone-sized screen, and axe-core on every view.

Set WEB_SCREENSHOTS=docs to write the README's screenshots (docs/img/web-*.png).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.cluster.objects import Cluster
from tests.cluster.test_gateway import service_account_token
from tests.conftest import ROOT, OperatorProcess, _free_port
from tests.helpers import wait_for
from tests.tools import Tool

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
AXE = ROOT / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
TASKS = ROOT / "tasks"
TOOLS = {
    "checknumber": [TASKS / "checknumber" / "checknumber.py"],
    "extract-metadata": [TASKS / "extract-metadata" / "extract_metadata.py"],
    "geolookup": [TASKS / "geolookup" / "geolookup.py"],
    "author-search": [TASKS / "author-search" / "author_search.py", "--catalogue"],
}
HTML_MESSAGE = '<img src=x onerror="window.pwned=1"><b>bold</b> & done'
SCREENSHOTS = ROOT / "docs" / "img"

pytestmark = [
    pytest.mark.usefixtures("crds"),
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make browser)"),
]


@dataclass
class Site:
    """Everything a browser test needs: the page's URL and people's tokens."""

    url: str
    namespace: str
    person: str  # may start and read runs
    reader: str  # may only read runs
    k8s: Cluster
    photos: Path

    def sign_in_link(self, token: str | None = None) -> str:
        return f"{self.url}/#token={token or self.person}"


def _wait_http(url: str) -> None:
    import urllib.request

    def up() -> bool:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return bool(reply.status == 200)

    wait_for(up, timeout=30, message=f"{url} answers")


@pytest.fixture(scope="module")
def site(
    api_client: client.ApiClient, crds: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """The seed's Shipyard with the real tools, a test Shipyard whose tool says HTML, the
    operator, and two people; one namespace for the module."""
    core = client.CoreV1Api(api_client)
    ns = f"t-web-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": ns, "labels": {"slipway.dev/test": "true"}}})
    work = tmp_path_factory.mktemp("web")
    photos = work / "photos"
    subprocess.run([sys.executable, str(TASKS / "common" / "images.py"), str(photos)], check=True)
    children: list[subprocess.Popen[bytes]] = []
    html_tool = Tool(tool_output={"message": HTML_MESSAGE}).start()
    operator = OperatorProcess(
        ns,
        work / "operator.log",
        env={"SLIPWAY_UPLOAD_DIR": str(work / "uploads"), "SLIPWAY_UPLOAD_GRACE_SECONDS": "600"},
    )
    try:
        env = {**os.environ, "TOOL_ALLOW_PRIVATE_URLS": "true"}
        k8s = Cluster(api_client, ns)
        for task, (script, *extra) in TOOLS.items():
            port = _free_port()
            arguments = [*extra, str(photos / "catalogue")] if extra else []
            children.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        str(script),
                        "serve",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        *arguments,
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            _wait_http(f"http://127.0.0.1:{port}/healthz")
            k8s.provider(task, task, f"http://127.0.0.1:{port}/")
        for path in (
            ROOT / "manifests/examples/shipyard-osint.yaml",
            TASKS / "photo-gate/taskprovider.yaml",
        ):
            subprocess.run(
                ["kubectl", "apply", "-n", ns, "-f", str(path)], check=True, capture_output=True
            )
        k8s.shipyard(
            "tests",
            [
                {
                    "name": "dev",
                    "sequences": [
                        {
                            "name": "echo",
                            "title": "Say something",
                            "description": "A test tool that answers with HTML in its message.",
                            "inputs": {
                                "properties": {"words": {"type": "string", "title": "Words"}}
                            },
                            "tasks": [{"name": "echo"}],
                        }
                    ],
                }
            ],
        )
        k8s.provider("echo", "echo", html_tool.url)
        operator.start()
        person = service_account_token(api_client, ns, "person", ["create", "get"])
        reader = service_account_token(api_client, ns, "reader", ["get"])
        yield Site(operator.gateway_url, ns, person, reader, k8s, photos)
    finally:
        operator.stop()
        for child in children:
            child.terminate()
        for child in children:
            child.wait(15)
        html_tool.stop()
        core.delete_namespace(ns)
        log = (work / "operator.log").read_text(errors="replace")
        assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_sync.sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab (empty session storage) that fails the test on a page error or a message
    in the console about a refused resource (CSP)."""
    context = browser.new_context(viewport={"width": 1024, "height": 800})
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    tab.on(
        "console",
        lambda m: (
            problems.append(f"console: {m.text}")
            if m.type == "error"
            and "401" not in m.text
            and "422" not in m.text
            and "403" not in m.text
            else None
        ),
    )
    tab.set_default_timeout(60_000)
    yield tab
    context.close()
    assert not problems, problems


def axe(tab: Any, view: str) -> None:
    """axe-core on the current view: no serious or critical violations."""
    if not AXE.exists():
        pytest.skip("axe-core is not installed (make node-tools)")
    tab.evaluate(AXE.read_text())
    result = tab.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["html"] for n in v["nodes"]][:3]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{view}: {json.dumps(bad, indent=1)}"


def shoot(tab: Any, name: str) -> None:
    if os.environ.get("WEB_SCREENSHOTS") == "docs":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(SCREENSHOTS / f"web-{name}.png"))


def verdict_of(tab: Any) -> Any:
    word = tab.locator(".verdict .word")
    word.wait_for(timeout=120_000)
    return word


def start_phone(tab: Any, site: Site, number: str = "+44 20 7946 0958") -> float:
    """From the catalogue: pick the phone check, fill it, press the button; the time pressed."""
    tab.get_by_role("link", name="Check a phone number").click()
    tab.get_by_label("Phone number").fill(number)
    pressed = time.monotonic()
    tab.get_by_role("button", name="Start the check").click()
    return pressed


# ---------------------------------------------------------------------------- tests
def test_sign_in_with_a_token_and_refusal_of_a_bad_one(page: Any, site: Site) -> None:
    page.goto(site.url + "/")
    page.get_by_role("heading", name="Sign in").wait_for()
    axe(page, "sign-in")
    page.get_by_label("Your access key").fill("not-a-real-token")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("This key was not accepted").wait_for()
    assert page.evaluate("sessionStorage.getItem('slipway.token')") is None
    page.get_by_label("Your access key").fill(site.person)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="What do you want to check?").wait_for()
    assert page.evaluate("sessionStorage.getItem('slipway.token')") == site.person
    assert page.locator("#who").text_content() == f"system:serviceaccount:{site.namespace}:person"
    # A sign-in link: the token is taken out of the address bar at once.
    page.goto(site.sign_in_link())
    page.get_by_role("heading", name="What do you want to check?").wait_for()
    assert site.person not in page.url
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in").wait_for()
    assert page.evaluate("sessionStorage.getItem('slipway.token')") is None
    # A bad sign-in link says so.
    page.goto(site.url + "/#token=bad")
    page.get_by_text("was not accepted").wait_for()


def test_the_catalogue_shows_exactly_what_rbac_allows(page: Any, site: Site) -> None:
    page.goto(site.sign_in_link())
    page.get_by_role("heading", name="What do you want to check?").wait_for()
    titles = page.locator(".capability .title").all_text_contents()
    assert sorted(titles) == ["Check a phone number", "Is this photo authentic?", "Say something"]
    assert "plain" not in titles  # untitled sequences (prod's) are not offered
    page.get_by_text("Tells whether a phone number is real").wait_for()
    axe(page, "catalogue")
    shoot(page, "catalogue")
    page.goto(site.sign_in_link(site.reader))
    page.get_by_text("There is nothing you may start yet").wait_for()
    assert page.locator(".capability").count() == 0


def test_phone_from_an_empty_page_to_a_pass_verdict_in_three_clicks(page: Any, site: Site) -> None:
    """Open (signed in by the link), click the capability, fill, click the button: the
    verdict. Prints the time from the button to the verdict (median of several)."""
    page.goto(site.sign_in_link())
    timings = []
    for attempt in range(5):
        if attempt:
            page.get_by_role("link", name="Checks").click()
        pressed = start_phone(page, site)
        word = verdict_of(page)
        timings.append(time.monotonic() - pressed)
        assert word.text_content() == "Pass"
    assert "verdict pass" in (page.locator(".verdict").get_attribute("class") or "")
    found = page.locator(".task .found").first.text_content() or ""
    assert "+44 20 7946 0958" in found or "+442079460958" in found, found
    assert "looking the number up" in (page.locator(".task .said").first.text_content() or "")
    axe(page, "phone verdict")
    print(
        f"\nphone: button to verdict, {len(timings)} runs: "
        f"median {statistics.median(timings):.2f} s "
        f"(min {min(timings):.2f}, max {max(timings):.2f})"
    )


def test_a_field_error_before_submitting_and_a_422_next_to_the_field(page: Any, site: Site) -> None:
    page.goto(site.sign_in_link())
    page.get_by_role("link", name="Check a phone number").click()
    field = page.get_by_label("Phone number")
    assert field.get_attribute("placeholder") == "e.g. +44 20 7946 0958"
    page.get_by_text("With the country code").wait_for()  # the help text
    before = len(site.k8s.items("sequenceruns"))
    page.get_by_role("button", name="Start the check").click()
    page.get_by_text("Please fill this in.").wait_for()
    assert field.get_attribute("aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") == "in-number"
    field.fill("call me maybe")
    field.blur()
    page.get_by_text("This is not in the expected form (for example +44 20 7946 0958).").wait_for()
    axe(page, "form with errors")
    assert len(site.k8s.items("sequenceruns")) == before  # nothing was sent
    # The server's own check: the page's copy of the inputs is older than the Shipyard's.
    shipyard = site.k8s.get("shipyards", "osint")
    original = json.loads(json.dumps(shipyard["spec"]))
    spec = shipyard["spec"]
    spec["stages"][0]["sequences"][0]["inputs"]["properties"]["number"]["pattern"] = "^[+]1"
    site.k8s.custom.patch_namespaced_custom_object(
        "slipway.dev", "v1alpha1", site.namespace, "shipyards", "osint", {"spec": spec}
    )
    try:
        field.fill("+44 20 7946 0958")
        page.get_by_role("button", name="Start the check").click()
        page.locator("#in-number-error", has_text="Is not in the expected form").wait_for()
        assert len(site.k8s.items("sequenceruns")) == before
    finally:
        site.k8s.custom.patch_namespaced_custom_object(
            "slipway.dev", "v1alpha1", site.namespace, "shipyards", "osint", {"spec": original}
        )


def test_the_photo_capability_with_an_upload_to_its_verdict_and_score_with_live_progress(
    page: Any, site: Site
) -> None:
    page.goto(site.sign_in_link())
    page.get_by_role("link", name="Is this photo authentic?").click()
    page.get_by_label("Photo").set_input_files(str(site.photos / "edited.jpg"))
    page.get_by_role("button", name="Start the check").click()
    # Live: extract-metadata is done while geolookup still waits (it starts 5 s later).
    tasks = page.locator(".task")
    tasks.filter(has_text="extract-metadata").filter(has_text="Done").wait_for()
    assert page.locator(".verdict .word").count() == 0
    said = page.locator(".task.done .said").first.text_content() or ""
    assert "reading the photo's metadata" in said
    word = verdict_of(page)
    assert word.text_content() == "Fail"
    score = page.locator(".verdict .score").text_content() or ""
    assert score.startswith("Score ")
    assert score.endswith(" / 100")
    doubts = page.locator(".doubts").text_content() or ""
    assert "No editing software named in the metadata" in doubts
    for name in ("extract-metadata", "geolookup", "author-search", "evaluate"):
        assert tasks.filter(has_text=name).filter(has_text="Done").count() == 1
    for name in ("extract-metadata", "geolookup", "author-search"):
        assert tasks.filter(has_text=name).locator(".said").count() == 1, name
    axe(page, "photo verdict")
    # An unedited photo taken where it is said to be: pass, with its score.
    page.get_by_role("link", name="Start another: Is this photo authentic?").click()
    page.get_by_label("Photo").set_input_files(str(site.photos / "unedited.jpg"))
    page.get_by_label("Country where it was taken").fill("GB")
    page.get_by_role("button", name="Start the check").click()
    assert verdict_of(page).text_content() == "Pass"
    assert (page.locator(".verdict .score").text_content() or "").startswith("Score ")
    shoot(page, "verdict")


def test_past_runs_and_the_shared_link(page: Any, site: Site, browser: Any) -> None:
    page.goto(site.sign_in_link())
    start_phone(page, site, "+44 7400 123456")
    verdict_of(page)
    link = page.locator(".permalink").get_attribute("href") or ""
    assert "#/run/" in link
    assert "token" not in link
    page.get_by_role("link", name="My results").click()
    page.get_by_role("heading", name="My results").wait_for()
    entries = page.locator(".runs li")
    entries.first.wait_for()
    assert entries.count() >= 1
    axe(page, "my results")
    fragment = "#" + link.split("#")[1]
    page.locator(f'.runs a[href="{fragment}"]').click()
    assert verdict_of(page).text_content() == "Pass"
    assert page.url.endswith(fragment)
    # Someone else with the right to read runs opens the shared link.
    other = browser.new_context()
    tab = other.new_page()
    try:
        tab.goto(site.sign_in_link(site.reader))
        tab.get_by_text("There is nothing you may start yet").wait_for()
        tab.goto(link)
        assert verdict_of(tab).text_content() == "Pass"
    finally:
        other.close()


def test_a_tools_message_with_html_in_it_is_shown_as_text(page: Any, site: Site) -> None:
    page.goto(site.sign_in_link())
    page.get_by_role("link", name="Say something").click()
    page.get_by_label("Words").fill("<i>hello</i>")
    page.get_by_role("button", name="Start the check").click()
    verdict_of(page)
    found = page.locator(".task .found").text_content() or ""
    assert found == HTML_MESSAGE  # the tool's own words, as text
    assert page.locator(".run b, .run img, .run i").count() == 0
    assert page.evaluate("window.pwned === undefined")
    page.locator("summary").click()
    assert page.get_by_text("words: <i>hello</i>").count() == 1


def test_keyboard_alone_from_the_catalogue_to_the_verdict(page: Any, site: Site) -> None:
    page.goto(site.sign_in_link())
    page.get_by_role("heading", name="What do you want to check?").wait_for()
    for _ in range(30):  # Tab to the phone capability
        page.keyboard.press("Tab")
        if "Check a phone number" in page.evaluate("document.activeElement.textContent || ''"):
            break
    page.keyboard.press("Enter")
    page.get_by_label("Phone number").wait_for()
    page.keyboard.press("Tab")  # from the heading to the first field
    assert page.evaluate("document.activeElement.id") == "in-number"
    page.keyboard.type("+44 20 7946 0958")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Start the check"
    page.keyboard.press("Enter")
    assert verdict_of(page).text_content() == "Pass"


def test_a_phone_sized_screen(browser: Any, site: Site) -> None:
    context = browser.new_context(
        viewport={"width": 375, "height": 667},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    )
    tab = context.new_page()
    try:
        tab.goto(site.sign_in_link())
        tab.get_by_role("heading", name="What do you want to check?").wait_for()
        fits = "document.documentElement.scrollWidth <= window.innerWidth"
        assert tab.evaluate(fits)
        tab.get_by_role("link", name="Check a phone number").tap()
        tab.get_by_label("Phone number").fill("+44 20 7946 0958")
        button = tab.get_by_role("button", name="Start the check")
        box = button.bounding_box()
        assert box is not None
        assert box["height"] >= 44
        assert box["width"] <= 375
        button.tap()
        assert verdict_of(tab).text_content() == "Pass"
        assert tab.evaluate(fits)
        axe(tab, "phone-sized verdict")
    finally:
        context.close()


def test_the_page_is_small_and_strict(page: Any, site: Site) -> None:
    """Prints the first load's size; the page's policy allows only its own scripts."""
    responses: list[Any] = []
    page.on("response", lambda r: responses.append(r))
    page.goto(site.url + "/")
    page.get_by_role("heading", name="Sign in").wait_for()
    response = page.request.get(site.url + "/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    sizes = {r.url: len(r.body()) for r in responses if "/v1/" not in r.url}
    total = sum(sizes.values())
    print(f"\nfirst load: {total} bytes uncompressed in {len(sizes)} files: {sizes}")
