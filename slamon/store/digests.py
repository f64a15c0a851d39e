"""Tamper evidence: the SHA-256 written with every raw result block, every issued statement's body
and every cached fleet, and the error raised when a record read back no longer matches it.

A digest is checked whenever its record is read, so a row edited in the database after slamon
wrote it (raw results set to `ok`, an issued body's payable changed, a cached fleet's exclusion
given another category) stops the command that reads it, naming the record, rather than
changing a statement without a trace. The digests are plain SHA-256: they catch an edit of the
bytes alone; an edit that also rewrites the digest changes the month's evidence digest, which is
among a statement's hashed inputs, so `statement verify` of the issued file still names it.
"""

from __future__ import annotations

import hashlib

from slamon.errors import StoreError


def sha256_hex(data: bytes | str) -> str:
    """The hex SHA-256 of stored bytes (text as UTF-8)."""
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def _short(digest: str | None) -> str:
    return "none" if digest is None else f"sha256:{digest[:16]}…"


class Tampered(StoreError):
    """A stored record whose bytes do not match the SHA-256 stored with them."""

    def __init__(self, record: str, stored: str | None, found: str) -> None:
        self.record, self.stored, self.found = record, stored, found
        super().__init__(
            f"{record}: the stored bytes do not match their SHA-256 (stored {_short(stored)}, "
            f"now {_short(found)}): they were changed in the database after slamon wrote them"
        )


def check(record: str, data: bytes | str, stored: str | None) -> None:
    """Raise Tampered (naming `record`) unless `data` hashes to `stored`."""
    found = sha256_hex(data)
    if found != stored:
        raise Tampered(record, stored, found)
