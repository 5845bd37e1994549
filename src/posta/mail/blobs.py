"""Content-addressed blob store for raw messages, on Django's default storage.

A blob's key is the SHA-256 of its bytes, so storing the same message twice (two
copies in two folders, a retry after a kill) writes one file, and a key never
points at different bytes. Keys look like `raw/ab/<64 hex>` (256 directories: a
second level would create a directory for nearly every message of a first mirror,
and on ext4 a file created in a fresh directory costs several times one created in
an existing one); keys stored by earlier versions (`raw/ab/cd/<64 hex>`) stay
readable, since rows keep the key they were given. The storage is the filesystem
under the data dir by default (settings.STORAGES["default"]) or S3 via
django-storages at scale.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, default_storage


def key_for(data: bytes) -> str:
    """The key `data` is stored under."""
    digest = hashlib.sha256(data).hexdigest()
    return f"raw/{digest[:2]}/{digest}"


def put(data: bytes) -> str:
    """Store `data` (if not stored yet) and return its key. Idempotent."""
    key = key_for(data)
    if default_storage.exists(key) and _touch(key):
        return key
    saved = default_storage.save(key, ContentFile(data))
    if saved != key:
        # Another process stored the same bytes between our check and our save; the
        # storage then picked another name. The content is the same: keep theirs.
        default_storage.delete(saved)
    return key


def put_many(items: list[bytes]) -> list[str]:
    """Store several blobs; returns their keys in order. Idempotent.

    On the filesystem storage the files are created directly: the storage API's
    existence checks, name juggling and renames cost more than the write (file
    creation dominates a first mirror). A file left short by a crash mid-write is
    recognized by its size, which the content address fixes, and written again;
    two writers of one key write the same bytes. Like the database on SQLite
    (synchronous=NORMAL), files are not fsynced one by one.
    """
    if not isinstance(default_storage, FileSystemStorage):
        return [put(data) for data in items]
    root = Path(default_storage.location)
    keys = []
    for data in items:
        key = key_for(data)
        keys.append(key)
        _write_once(root / key, data)
    return keys


def _write_once(path: Path, data: bytes) -> None:
    # Mail is the owner's alone, as FILE_UPLOAD_PERMISSIONS makes it on the storage path.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileNotFoundError:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_size == len(data) and _touch_path(path):
            return
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def get(key: str) -> bytes:
    """The bytes stored under `key`; FileNotFoundError if there are none."""
    with default_storage.open(key, "rb") as handle:
        data: bytes = handle.read()
    return data


def exists(key: str) -> bool:
    return bool(key) and default_storage.exists(key)


def _touch_path(path: Path) -> bool:
    """Mark a blob just reused (its mtime), so a concurrent letting go keeps it
    (`remove_unless_fresh`); False when it vanished meanwhile: write it again."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    return True


def _touch(key: str) -> bool:
    if isinstance(default_storage, FileSystemStorage):
        return _touch_path(Path(default_storage.path(key)))
    return True  # other storages: the object's own modification time is all there is


def remove_unless_fresh(key: str, fresh_since: datetime) -> bool:
    """Remove the blob unless it was written or reused at or after `fresh_since`
    (a writer storing a new copy of the same bytes may not have committed the row
    naming it yet); True when it is gone.

    On the filesystem the file is first renamed aside, atomically, and its mtime
    read there: a writer reusing it before the rename left a fresh mtime (the file
    is put back), and one coming after it finds no file and writes it anew."""
    if not key:
        return True
    if not isinstance(default_storage, FileSystemStorage):
        if not default_storage.exists(key):
            return True
        if default_storage.get_modified_time(key) >= fresh_since:
            return False
        default_storage.delete(key)
        return True
    path = Path(default_storage.path(key))
    aside = path.with_name(f"{path.name}.gone-{secrets.token_hex(4)}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return True
    try:
        if datetime.fromtimestamp(aside.stat().st_mtime, tz=UTC) < fresh_since:
            return True
        try:
            os.link(aside, path)
        except FileExistsError:
            pass  # a writer wrote it again meanwhile: the same bytes
        return False
    finally:
        aside.unlink()


def delete(key: str) -> None:
    """Remove the blob stored under `key` (nothing if there is none). Only
    posta.mail.keepers calls it, once no row stores the key any more."""
    if key and default_storage.exists(key):
        default_storage.delete(key)
