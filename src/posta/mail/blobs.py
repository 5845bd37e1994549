"""Content-addressed blob store for raw messages, on Django's default storage.

A blob's key is the SHA-256 of its bytes, so storing the same message twice (two
copies in two folders, a retry after a kill) writes one file, and a key never
points at different bytes. Keys look like `raw/ab/cd/<64 hex>`; the storage is the
filesystem under the data dir by default (settings.STORAGES["default"]) or S3 via
django-storages at scale.
"""

from __future__ import annotations

import hashlib

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage


def key_for(data: bytes) -> str:
    """The key `data` is stored under."""
    digest = hashlib.sha256(data).hexdigest()
    return f"raw/{digest[:2]}/{digest[2:4]}/{digest}"


def put(data: bytes) -> str:
    """Store `data` (if not stored yet) and return its key. Idempotent."""
    key = key_for(data)
    if default_storage.exists(key):
        return key
    saved = default_storage.save(key, ContentFile(data))
    if saved != key:
        # Another process stored the same bytes between our check and our save; the
        # storage then picked another name. The content is the same: keep theirs.
        default_storage.delete(saved)
    return key


def get(key: str) -> bytes:
    """The bytes stored under `key`; FileNotFoundError if there are none."""
    with default_storage.open(key, "rb") as handle:
        data: bytes = handle.read()
    return data


def exists(key: str) -> bool:
    return bool(key) and default_storage.exists(key)
