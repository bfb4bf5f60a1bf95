"""Random secrets and their at-rest digests."""

from __future__ import annotations

import hashlib
import secrets


def digest(secret: str) -> str:
    """SHA-256 of a high-entropy secret (tokens, API keys): safe and indexable."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(prefix: str, nbytes: int = 32) -> str:
    return prefix + secrets.token_urlsafe(nbytes)
