"""Fuzz the event gateway with random malformed requests, as a hostile client would.

Starts (or reuses) the local control plane, a fresh namespace with a Shipyard and a client
token, and one operator process (or fuzzes `--url` instead), then sends `--requests` random
requests over raw TCP sockets, so that broken request lines, oversized or invalid headers,
lying Content-Lengths and truncated bodies reach the server exactly as written. Prints, per
kind of request and in total: how many answers were 5xx, how many error answers (status >= 400)
were not JSON `{error, message}`, and how many connections were dropped without an answer.

Figures, not assertions: `make test` has its own checks (tests/cluster/test_gateway_fuzz.py).
The same `--seed` sends the same requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tasks" / "demo"))

NAMESPACE = "slipway-fuzz"


@dataclass
class Outcome:
    kind: str
    status: int | None  # None: no answer (dropped, reset, or nothing within the timeout)
    json_error: bool  # an error answer whose body is a JSON object with error and message
    note: str = ""


# ------------------------------------------------------------------ request generators
Gen = Callable[[random.Random, "Target"], bytes]


@dataclass
class Target:
    host: str
    port: int
    namespace: str
    token: str

    @property
    def events(self) -> str:
        return f"/v1/namespaces/{self.namespace}/events"


def _head(method: str, path: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: fuzz", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers]
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + body


def _event(rnd: random.Random, data: object = None) -> dict[str, object]:
    event: dict[str, object] = {
        "specversion": "1.0",
        "id": uuid.UUID(int=rnd.getrandbits(128)).hex,
        "source": "fuzz",
        "type": rnd.choice(
            ["dev.sequence-one.triggered", "checknumber.finished", "dev.x.started", "a.b.c.d"]
        ),
        "datacontenttype": "application/json",
        "data": {"number": "1"} if data is None else data,
    }
    return event


def _junk(rnd: random.Random, n: int) -> str:
    alphabet = "abc{}[]\"':,\\/\x00\x7f é日\t -_.%?#&=+"
    return "".join(rnd.choice(alphabet) for _ in range(n))


def gen_route(rnd: random.Random, t: Target) -> bytes:
    """Unknown paths and wrong methods."""
    method = rnd.choice(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "POST", "FOO", "TRACE"])
    path = rnd.choice(
        [
            "/",
            "/nope",
            "/v1",
            "/v1/namespaces",
            t.events,
            f"/v1/namespaces/{t.namespace}/sequenceruns",
            f"/v1/namespaces/{t.namespace}/sequenceruns/x/y",
            "/healthz/x",
            "/" + "a" * rnd.randint(1, 3000),
            "/%zz%00",
            "/v1/namespaces/%2e%2e/events",
        ]
    )
    return _head(method, path, [("Authorization", f"Bearer {t.token}")])


def gen_request_line(rnd: random.Random, t: Target) -> bytes:
    """Broken request lines and non-HTTP bytes."""
    return rnd.choice(
        [
            lambda: bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 200))) + b"\r\n\r\n",
            lambda: b"GET\r\n\r\n",
            lambda: b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
            lambda: b"GET /" + b"x" * rnd.randint(8000, 20000) + b" HTTP/1.1\r\n\r\n",
            lambda: b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,
            lambda: b"POST  /  HTTP/1.1\r\n\r\n",
            lambda: f"G{_junk(rnd, 10)}T / HTTP/1.1\r\n\r\n".encode(errors="replace"),
        ]
    )()


def gen_headers(rnd: random.Random, t: Target) -> bytes:
    """Oversized, too many, or invalid headers."""
    choice = rnd.randrange(6)
    if choice == 0:
        headers = [("X-Big", "v" * rnd.randint(8200, 30000))]
    elif choice == 1:
        headers = [(f"X-H{i}", "v") for i in range(rnd.randint(129, 400))]
    elif choice == 2:
        headers = [("Bad Header", "x"), ("X", "\x00\x01")]
    elif choice == 3:
        headers = [("Content-Length", rnd.choice(["-1", "abc", "1e9", "99999999999999999999"]))]
    elif choice == 4:
        headers = [("Transfer-Encoding", rnd.choice(["gzip", "chunked, chunked", "x"]))]
    else:
        headers = [("ce-" + _junk(rnd, 5).replace(" ", "").replace(":", ""), _junk(rnd, 20))]
    return _head("POST", t.events, [("Content-Type", "application/json"), *headers], b"{}")


def _nested(depth: int, rnd: random.Random) -> str:
    opener, closer = rnd.choice([("[", "]"), ('{"a":', "}")])
    return opener * depth + "1" + closer * depth


def gen_json(rnd: random.Random, t: Target) -> bytes:
    """Deep, wide, long and broken JSON bodies, structured and binary mode."""
    choice = rnd.randrange(8)
    if choice == 0:
        deep = _nested(rnd.randint(2000, 200_000), rnd)
        body = json.dumps(_event(rnd))[:-1] + ', "deep": ' + deep + "}"
    elif choice == 1:
        body = '{"specversion":"1.0","data":' + _nested(rnd.randint(1000, 100_000), rnd) + "}"
    elif choice == 2:
        body = json.dumps(_event(rnd, {f"k{i}": i for i in range(rnd.randint(20_000, 60_000))}))
    elif choice == 3:
        body = json.dumps(_event(rnd, {"s": "x" * rnd.randint(200_000, 900_000)}))
    elif choice == 4:
        body = json.dumps(_event(rnd))[: rnd.randint(1, 80)]
    elif choice == 5:
        body = rnd.choice(["[]", "1", '"x"', "null", "{}", '{"data": 1}', "\ufeff{}", "NaN"])
    elif choice == 6:
        event = _event(rnd)
        key = rnd.choice(list(event))
        event[key] = rnd.choice([None, 1, [], {}, True, "", "\x00", "x" * 3000])
        body = json.dumps(event)
    else:
        headers = [
            ("Content-Type", "application/json"),
            ("ce-specversion", "1.0"),
            ("ce-id", "x"),
            ("ce-source", "fuzz"),
            ("ce-type", "dev.sequence-one.triggered"),
            ("ce-time", rnd.choice(["now", "2024-13-45T99:99:99Z", "1" * 50])),
            ("Authorization", f"Bearer {t.token}"),
        ]
        data = _nested(rnd.randint(5000, 50_000), rnd) if rnd.random() < 0.7 else "{bad"
        return _head("POST", t.events, headers, data.encode())
    headers = [("Content-Type", "application/cloudevents+json")]
    if rnd.random() < 0.7:
        headers.append(("Authorization", f"Bearer {t.token}"))
    return _head("POST", t.events, headers, body.encode())


def gen_size(rnd: random.Random, t: Target) -> bytes:
    """Bodies over the limit, lying Content-Lengths, truncated and broken chunked bodies."""
    choice = rnd.randrange(4)
    if choice == 0:
        body = b"{" + b" " * rnd.randint(1_100_000, 3_000_000) + b"}"
        return _head("POST", t.events, [("Content-Type", "application/cloudevents+json")], body)
    if choice == 1:  # promises more than it sends, then waits
        return _head(
            "POST",
            t.events,
            [("Content-Type", "application/cloudevents+json"), ("Content-Length", "5000")],
            b'{"specversion":',
        )
    if choice == 2:
        return _head(
            "POST",
            t.events,
            [("Content-Type", "application/cloudevents+json"), ("Transfer-Encoding", "chunked")],
            b"zz\r\nabc\r\n0\r\n\r\n",
        )
    return _head(
        "POST",
        t.events,
        [("Content-Type", "application/cloudevents+json"), ("Content-Length", "0")],
    )


def gen_auth_and_reads(rnd: random.Random, t: Target) -> bytes:
    """Bad tokens, bad waits, odd run names."""
    auth = rnd.choice(
        [
            "",
            "Bearer",
            "Basic abc",
            "Bearer " + _junk(rnd, 40).replace("\r", "").replace("\n", ""),
            "Bearer " + "x" * 4000,
            f"Bearer {t.token}",
        ]
    )
    headers = [("Authorization", auth)] if auth else []
    if rnd.random() < 0.5:
        name = rnd.choice(["x", "A_B", "%00", "a" * 300, "..", "%2F"])
        wait = rnd.choice(["", "?wait=abc", "?wait=-1s", "?wait=99999h", "?wait=0.1s", "?x=1"])
        return _head("GET", f"/v1/namespaces/{t.namespace}/sequenceruns/{name}{wait}", headers)
    body = json.dumps(_event(rnd, {"shipyard": rnd.choice(["nope", "BAD NAME", 5, None])}))
    return _head(
        "POST",
        t.events,
        [("Content-Type", "application/cloudevents+json"), *headers],
        body.encode(),
    )


def gen_page_routes(rnd: random.Random, t: Target) -> bytes:
    """The web page's routes and the approval route: odd names, queries, tokens and bodies."""
    auth = rnd.choice(
        ["", "Bearer", "Bearer " + "x" * 64, f"Bearer {t.token}", f"Bearer {t.token}"]
    )
    headers = [("Authorization", auth)] if auth else []
    name = rnd.choice(["x", "finished-run", "A_B", "%00", "a" * 300, "..", "%2F", "r.1"])
    namespace = rnd.choice([t.namespace, t.namespace, "NO_PE", "kube-system", "a" * 70])
    base = f"/v1/namespaces/{namespace}"
    junk = _junk(rnd, rnd.randint(0, 30)).replace(" ", "%20").replace("#", "%23")
    choice = rnd.randrange(8)
    if choice == 0:
        return _head("GET", rnd.choice(["/v1/whoami", "/v1/capabilities"]), headers)
    if choice == 1:
        query = rnd.choice(
            ["", "?mine=true", f"?limit={junk}", "?continue=-5", "?limit=1e9&continue=x"]
        )
        return _head("GET", f"{base}/sequenceruns{query}", headers)
    if choice == 2:
        return _head("GET", f"{base}/sequenceruns/{name}/events", headers)
    if choice == 3:
        sha = rnd.choice(["0" * 64, "zz", junk or "x"])
        return _head("GET", f"{base}/sequenceruns/{name}/uploads/{sha}", headers)
    if choice == 4:
        return _head(
            "GET", f"/static/{rnd.choice(['app.js', '..%2Fserver.py', '.env', junk or 'x'])}", []
        )
    if choice == 5:  # uploads: odd capabilities, types and bodies
        capability = rnd.choice(["fuzz/dev/sequence-one", "x/y", "NO/PE/x", junk])
        body = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 2000)))
        kind = rnd.choice(["image/jpeg", "text/plain", "", "image/*", "\x00"])
        extra = [("Content-Type", kind)] if kind else []
        return _head(
            "POST", f"{base}/uploads?capability={capability}&input=image", [*headers, *extra], body
        )
    approval = f"{base}/taskexecutions/{name}/approval"
    body = rnd.choice(
        [
            b'{"decision": "approve"}',
            b'{"decision": "maybe", "comment": 5}',
            b"[" * 5000 + b"]" * 5000,
            b"{" + b" " * 20_000 + b"}",
            b"decision=approve",
            b"",
            b'{"decision": ',
        ]
    )
    kind = rnd.choice(["application/json", "text/plain", "application/merge-patch+json"])
    return _head("POST", approval, [*headers, ("Content-Type", kind)], body)


GENERATORS: dict[str, Gen] = {
    "page/approval": gen_page_routes,
    "route/method": gen_route,
    "request line": gen_request_line,
    "headers": gen_headers,
    "json body": gen_json,
    "size/framing": gen_size,
    "auth/reads": gen_auth_and_reads,
}


# ------------------------------------------------------------------ sending
async def send(target: Target, raw: bytes, kind: str, patience: float) -> Outcome:
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(target.host, target.port), patience
        )
    except OSError as exc:
        return Outcome(kind, None, False, f"connect: {exc}")
    answer = b""
    try:
        writer.write(raw)
        await writer.drain()
    except OSError:
        pass  # the server may close early (too large): read what it answered
    try:
        answer = await asyncio.wait_for(_read_answer(reader), patience)
    except (OSError, TimeoutError) as exc:
        return Outcome(kind, None, False, type(exc).__name__)
    finally:
        writer.close()
    return classify(kind, answer)


async def _read_answer(reader: asyncio.StreamReader) -> bytes:
    """One HTTP answer: its head, then Content-Length bytes (or up to EOF without one). The
    server may keep the connection open a while after it answered (a lingering read)."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = await reader.read(65536)
        if not chunk:
            return answer
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        None,
    )
    while length is None or len(body) < length:
        chunk = await reader.read(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def classify(kind: str, answer: bytes) -> Outcome:
    head, _, body = answer.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/"):
        return Outcome(kind, None, False, "no HTTP answer")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return Outcome(kind, None, False, "bad status line")
    headers = head.decode("latin-1").lower()
    if "transfer-encoding: chunked" in headers:
        body = _dechunk(body)
    is_json = False
    try:
        document = json.loads(body)
        is_json = isinstance(document, dict) and {"error", "message"} <= document.keys()
    except ValueError:
        pass
    return Outcome(kind, status, is_json)


def _dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            return out
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return out


async def fuzz(
    target: Target, count: int, seed: int, concurrency: int, patience: float
) -> list[Outcome]:
    rnd = random.Random(seed)
    kinds = list(GENERATORS)
    plan = [
        (kind, GENERATORS[kind](rnd, target)) for kind in (rnd.choice(kinds) for _ in range(count))
    ]
    gate = asyncio.Semaphore(concurrency)

    async def one(kind: str, raw: bytes) -> Outcome:
        async with gate:
            return await send(target, raw, kind, patience)

    return await asyncio.gather(*(one(kind, raw) for kind, raw in plan))


def report(outcomes: list[Outcome]) -> dict[str, float]:
    by_kind: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_kind[outcome.kind].append(outcome)
    print(f"{'kind':<14} {'sent':>6} {'5xx':>6} {'errors':>7} {'non-JSON':>9} {'dropped':>8}")
    rows = [*sorted(by_kind.items()), ("TOTAL", outcomes)]
    totals: dict[str, float] = {}
    for kind, items in rows:
        five = sum(1 for o in items if o.status is not None and o.status >= 500)
        errors = [o for o in items if o.status is not None and o.status >= 400]
        plain = sum(1 for o in errors if not o.json_error)
        dropped = sum(1 for o in items if o.status is None)
        print(f"{kind:<14} {len(items):>6} {five:>6} {len(errors):>7} {plain:>9} {dropped:>8}")
        if kind == "TOTAL":
            totals = {
                "requests": len(items),
                "share_5xx": five / len(items),
                "share_non_json_errors": plain / max(1, len(errors)),
                "dropped": dropped,
            }
    statuses = Counter(o.status for o in outcomes)
    print("statuses:", ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items(), key=str)))
    print(
        f"5xx: {totals['share_5xx']:.1%} of all answers; non-JSON: "
        f"{totals['share_non_json_errors']:.1%} of error answers; dropped: {totals['dropped']}"
    )
    return totals


def setup_plane() -> tuple[Target, list[object], Path]:
    """The local control plane, a namespace with a Shipyard, a token, an operator."""
    from harness import client_token, fresh_namespace, kubectl, start_operator

    fresh_namespace(NAMESPACE)
    kubectl(
        "apply",
        "-n",
        NAMESPACE,
        "-f",
        "-",
        stdin=json.dumps(
            {
                "apiVersion": "slipway.dev/v1alpha1",
                "kind": "Shipyard",
                "metadata": {"name": "fuzz"},
                "spec": {
                    "stages": [
                        {
                            "name": "dev",
                            "sequences": [{"name": "sequence-one", "tasks": [{"name": "t"}]}],
                        }
                    ]
                },
            }
        ),
    )
    token = client_token(NAMESPACE)
    work = Path(tempfile.mkdtemp(prefix="slipway-fuzz-"))
    operator, url = start_operator(NAMESPACE, work)
    parts = urlsplit(url)
    assert parts.hostname
    assert parts.port
    return Target(parts.hostname, parts.port, NAMESPACE, token), [operator], work


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--timeout",
        type=float,
        default=40.0,
        help="seconds to wait for an answer (more than the gateway's body timeout, 30 s)",
    )
    parser.add_argument("--url", help="fuzz this gateway instead of starting one")
    parser.add_argument("--namespace", default=NAMESPACE)
    parser.add_argument("--token", default="")
    parser.add_argument("--json", type=Path, help="also write the totals here")
    args = parser.parse_args()

    children: list[object] = []
    work: Path | None = None
    if args.url:
        parts = urlsplit(args.url)
        assert parts.hostname
        assert parts.port
        target = Target(parts.hostname, parts.port, args.namespace, args.token or "none")
    else:
        target, children, work = setup_plane()
    try:
        outcomes = asyncio.run(
            fuzz(target, args.requests, args.seed, args.concurrency, args.timeout)
        )
        totals = report(outcomes)
        if args.json:
            args.json.write_text(json.dumps(totals, indent=2))
    finally:
        if children:
            from harness import stop

            stop(children)  # type: ignore[arg-type]
        if work is not None:
            log = (work / "operator.log").read_text(errors="replace")
            print(f"operator log: {work / 'operator.log'} ({log.count('Traceback')} tracebacks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
