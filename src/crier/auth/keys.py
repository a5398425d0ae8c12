"""API key secrets: recognisable, high-entropy, stored only as a SHA-256 digest.

A key looks like `crier_sk_<43 url-safe characters>` (256 bits of randomness). The prefix
lets secret scanners and people recognise a leaked key; the randomness makes a plain
SHA-256 the right store (a slow password hash buys nothing against 256 random bits, and
costs time on every request).
"""

from __future__ import annotations

import hashlib
import re
import secrets

KEY_PREFIX = "crier_sk_"
_SHAPE = re.compile(r"^crier_sk_[A-Za-z0-9_-]{43}$")
DISPLAY_PREFIX_LENGTH = len(KEY_PREFIX) + 6


def generate_key() -> str:
    """A new API key secret, to be shown once and never stored."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def looks_like_key(candidate: str) -> bool:
    """Whether `candidate` has the shape of a Crier API key (cheap check before any query)."""
    return bool(_SHAPE.match(candidate))


def display_prefix(key: str) -> str:
    """The start of a key, safe to show in listings so a person can tell keys apart."""
    return key[:DISPLAY_PREFIX_LENGTH]
