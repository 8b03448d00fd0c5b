"""Callback tokens: signed per execution, verified without storage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from slipway.engine.tokens import LIFETIME, check_callback_token, sign_callback_token

KEY = b"k" * 32
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SCOPE = {"namespace": "ns", "execution": "run-0-check", "uid": "uid-1"}


def token(**changes: str) -> str:
    return sign_callback_token(KEY, **{**SCOPE, **changes}, created=T0)


def test_the_token_of_an_execution_is_accepted_and_stable() -> None:
    """The same execution gets the same token; it is accepted until it expires."""
    assert token() == token()
    assert check_callback_token(KEY, token(), **SCOPE, now=T0) is None
    assert check_callback_token(KEY, token(), **SCOPE, now=T0 + LIFETIME) is None


def test_another_executions_token_is_refused() -> None:
    """A token is scoped to namespace, name and uid: none of them may differ."""
    for other in ({"namespace": "x"}, {"execution": "run-1-check"}, {"uid": "uid-2"}):
        why = check_callback_token(KEY, token(**other), **SCOPE, now=T0)
        assert why == "the token is not the callback token of run-0-check"


def test_another_key_expired_or_malformed_tokens_are_refused() -> None:
    """A token signed with another key, an expired one and garbage are refused, with why."""
    forged = sign_callback_token(b"other", **SCOPE, created=T0)
    assert check_callback_token(KEY, forged, **SCOPE, now=T0) is not None
    late = T0 + LIFETIME + timedelta(seconds=1)
    assert check_callback_token(KEY, token(), **SCOPE, now=late) == (
        "the callback token of run-0-check has expired"
    )
    for garbage in ("", "v1", "v1.x.y", "v2.1.abc", "v1.123."):
        assert check_callback_token(KEY, garbage, **SCOPE, now=T0) == (
            "the token is not a Slipway callback token"
        )
    # a token whose expiry was edited no longer matches its signature
    version, expires, signature = token().split(".")
    edited = f"{version}.{int(expires) + 3600}.{signature}"
    assert check_callback_token(KEY, edited, **SCOPE, now=T0) is not None
