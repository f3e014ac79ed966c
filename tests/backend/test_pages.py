"""Page tokens: a token works only for its own account and query, unchanged, in time."""

from __future__ import annotations

import pytest

from simulator.backend.pages import InvalidToken, PageTokens

QUERY = {"op": "ListDevices", "deviceType": None}


def test_a_token_gives_back_its_position() -> None:
    tokens = PageTokens(b"k" * 32)
    token = tokens.issue(account="111111111111", query=QUERY, position=["D9", 3], now=0.0)
    assert tokens.open(token, account="111111111111", query=QUERY, now=60.0) == ["D9", 3]


@pytest.mark.parametrize(
    ("account", "query", "now"),
    [
        ("222222222222", QUERY, 0.0),
        ("111111111111", {"op": "ListDevices", "deviceType": "button"}, 0.0),
        ("111111111111", QUERY, 24 * 3600.0),
    ],
    ids=["other-account", "other-query", "expired"],
)
def test_a_token_out_of_its_place_is_refused(
    account: str, query: dict[str, object], now: float
) -> None:
    tokens = PageTokens(b"k" * 32)
    token = tokens.issue(account="111111111111", query=QUERY, position=["D9"], now=0.0)
    with pytest.raises(InvalidToken):
        tokens.open(token, account=account, query=query, now=now)


@pytest.mark.parametrize("token", ["", "x", "not base64 !!", "AAAA" * 20])
def test_a_forged_token_is_refused(token: str) -> None:
    with pytest.raises(InvalidToken, match="not one this service issued"):
        PageTokens(b"k" * 32).open(token, account="a", query=QUERY, now=0.0)


def test_a_token_from_another_database_is_refused() -> None:
    token = PageTokens(b"k" * 32).issue(account="a", query=QUERY, position=[], now=0.0)
    with pytest.raises(InvalidToken):
        PageTokens(b"j" * 32).open(token, account="a", query=QUERY, now=0.0)


def test_one_flipped_character_is_refused() -> None:
    tokens = PageTokens(b"k" * 32)
    token = tokens.issue(account="a", query=QUERY, position=["D1"], now=0.0)
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    with pytest.raises(InvalidToken):
        tokens.open(flipped, account="a", query=QUERY, now=0.0)
