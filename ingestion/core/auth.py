"""API keys: hashed at rest, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from ingestion.core.config import WRITE_SCOPE, ApiKey


@dataclass(frozen=True)
class Principal:
    producer: str
    scopes: frozenset[str]

    @property
    def can_write(self) -> bool:
        return WRITE_SCOPE in self.scopes


ANONYMOUS = Principal("anonymous", frozenset({WRITE_SCOPE}))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """Return a fresh random key and the hash to put in the configuration."""
    key = "trib_" + secrets.token_urlsafe(32)
    return key, hash_key(key)


class KeyStore:
    def __init__(self, keys: list[ApiKey]) -> None:
        self._keys = [(bytes.fromhex(k.sha256), k) for k in keys]

    def authenticate(self, presented: str | None) -> Principal | None:
        """Return who holds ``presented``, or None. Every key is compared, in constant time."""
        if not presented:
            return None
        digest = hashlib.sha256(presented.encode()).digest()
        found: ApiKey | None = None
        for stored, key in self._keys:
            if hmac.compare_digest(stored, digest):
                found = key
        if found is None:
            return None
        return Principal(found.producer, frozenset(found.scopes))


def bearer_token(header: str | None) -> str | None:
    """Extract the key from ``Authorization: Bearer <key>``."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None
