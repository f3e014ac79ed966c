"""Opaque page tokens: where the last page stopped, sealed so a caller cannot forge one.

A token carries the position (the last key returned), the account and a digest of
the query it belongs to, and an expiry, under an HMAC with a key kept in the
database. Using one with another account, another query (other filters, another time
window, another device), after it expired, or with any byte changed is the API's
``RangeNotSatisfiableException``: nothing about the position leaks, and a restart does
not break paging.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Final

TOKEN_LIFETIME_S: Final = 24 * 3600.0
_MAC_BYTES: Final = 16


class InvalidToken(ValueError):
    """The token is forged, expired, or from another query or account."""


class PageTokens:
    def __init__(self, key: bytes, *, lifetime_s: float = TOKEN_LIFETIME_S) -> None:
        self._key = key
        self._lifetime_s = lifetime_s

    def issue(
        self, *, account: str, query: Mapping[str, object], position: Sequence[object], now: float
    ) -> str:
        body = json.dumps(
            {"q": _digest(account, query), "p": list(position), "e": int(now + self._lifetime_s)},
            separators=(",", ":"),
        ).encode()
        sealed = self._mac(body) + body
        return base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def open(
        self, token: str, *, account: str, query: Mapping[str, object], now: float
    ) -> list[object]:
        """The position sealed in ``token``; :class:`InvalidToken` if it does not belong here."""
        try:
            sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise InvalidToken("the token is not one this service issued") from None
        mac, body = sealed[:_MAC_BYTES], sealed[_MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(body)):
            raise InvalidToken("the token is not one this service issued")
        fields = json.loads(body)
        if fields["q"] != _digest(account, query):
            raise InvalidToken("the token belongs to another query")
        if now >= fields["e"]:
            raise InvalidToken("the token expired")
        position: list[object] = fields["p"]
        return position

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC_BYTES]


def _digest(account: str, query: Mapping[str, object]) -> str:
    canonical = json.dumps([account, sorted(query.items())], default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]
