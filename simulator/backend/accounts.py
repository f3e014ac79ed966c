"""Who may call the API: AWS-style accounts, each an id with one access key pair.

``--account ID:ACCESS_KEY:SECRET`` names them; with none, the backend makes one
development account whose keys derive from a secret kept in its database, so they
stay the same across restarts of one database and differ between databases.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from simulator.api.sigv4 import Credentials

DEVELOPMENT_ACCOUNT_ID: Final = "123456789012"
_ACCOUNT_ID: Final = re.compile(r"\d{12}")
_ACCESS_KEY: Final = re.compile(r"[A-Z0-9]{16,128}")


class AccountError(ValueError):
    """An ``--account`` value that cannot be used."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Account:
    account_id: str
    credentials: Credentials


def parse_account(spec: str) -> Account:
    """``ID:ACCESS_KEY:SECRET`` -> Account; the error never repeats the secret."""
    parts = spec.split(":", 2)
    if len(parts) != 3:
        raise AccountError("--account: expected ID:ACCESS_KEY:SECRET")
    account_id, access_key, secret = parts
    if not _ACCOUNT_ID.fullmatch(account_id):
        raise AccountError(f"--account: account id {account_id!r} must be 12 digits")
    if not _ACCESS_KEY.fullmatch(access_key):
        raise AccountError(
            f"--account {account_id}: access key must be 16 to 128 upper-case letters or digits"
        )
    if len(secret) < 16:
        raise AccountError(f"--account {account_id}: the secret must be at least 16 characters")
    return Account(
        account_id=account_id,
        credentials=Credentials(access_key=access_key, secret_key=secret),
    )


def development_account(seed: bytes) -> Account:
    """The account a backend started with no ``--account`` uses; keys derive from ``seed``."""
    digest = hashlib.sha256(b"clicksim development account\0" + seed).digest()
    access_key = "AKIA" + base64.b32encode(digest[:10]).decode()
    secret = base64.b64encode(digest[10:]).decode()
    return Account(
        account_id=DEVELOPMENT_ACCOUNT_ID,
        credentials=Credentials(access_key=access_key, secret_key=secret),
    )


class Accounts:
    """The accounts of one backend, found by access key."""

    def __init__(self, accounts: Iterable[Account]) -> None:
        self._by_key: dict[str, Account] = {}
        ids: set[str] = set()
        for account in accounts:
            key = account.credentials.access_key
            if key in self._by_key:
                raise AccountError(f"--account: access key {key} is given twice")
            if account.account_id in ids:
                raise AccountError(f"--account: account id {account.account_id} is given twice")
            ids.add(account.account_id)
            self._by_key[key] = account

    def by_access_key(self, access_key: str) -> Account | None:
        return self._by_key.get(access_key)

    def credentials(self, access_key: str) -> Credentials | None:
        account = self._by_key.get(access_key)
        return None if account is None else account.credentials

    @property
    def all(self) -> Mapping[str, Account]:
        return self._by_key
