"""Where Posta keeps its files, and the secrets it makes for itself on first start.

Settings read the environment; this module only turns those values into paths and
keys. A key generated here is written once, with mode 0600, and read back on every
later start, so a restart never loses the ability to decrypt stored passwords. The
data directory is created 0700: it holds mail and the keys (`posta` also sets its
umask to 077, so every file below it is the owner's alone).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet


def data_dir() -> Path:
    """The directory for the embedded database, queue, blobs and generated keys."""
    path = Path(os.environ.get("POSTA_DATA_DIR", "var")).resolve()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _read_or_create(path: Path, make: str) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    # O_EXCL: two processes starting at once must not write two different keys.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(make + "\n")
    return make


def secret_key() -> str:
    """Django's SECRET_KEY: POSTA_SECRET_KEY, else one generated into the data dir."""
    from_env = os.environ.get("POSTA_SECRET_KEY")
    if from_env:
        return from_env
    return _read_or_create(data_dir() / "secret.key", secrets.token_urlsafe(50))


def encryption_keys() -> list[str]:
    """Fernet keys for secrets at rest, newest first.

    POSTA_ENCRYPTION_KEYS is a comma-separated list; the first encrypts, all decrypt
    (MultiFernet), which is how a key is rotated. Without it, one key is generated
    into the data dir.
    """
    from_env = os.environ.get("POSTA_ENCRYPTION_KEYS", "")
    keys = [key.strip() for key in from_env.split(",") if key.strip()]
    if keys:
        return keys
    path = key_file()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    stored = _read_or_create(path, Fernet.generate_key().decode())
    return [key.strip() for key in stored.replace("\n", ",").split(",") if key.strip()]


def key_file() -> Path:
    """The file of encryption keys used when POSTA_ENCRYPTION_KEYS is not set:
    POSTA_KEY_FILE, else `encryption.keys` in the data dir."""
    configured = os.environ.get("POSTA_KEY_FILE", "").strip()
    if configured:
        return Path(configured).expanduser().resolve()
    return data_dir() / "encryption.keys"


def key_beside_data_warning(*, database_engine: str) -> str | None:
    """A warning for the operator when the encryption key sits in the data directory
    of a deployment that keeps its database elsewhere, or None.

    Stored passwords are safe only while the key and the data travel apart: one
    copy of the data directory (a backup, a snapshot) carries the key, and with a
    database dump it decrypts every stored password. The embedded default (SQLite
    in the data directory) keeps everything in one place by design, so only a
    deployment that chose another database is told.
    """
    if os.environ.get("POSTA_ENCRYPTION_KEYS", "").strip(",").strip():
        return None
    if database_engine == "django.db.backends.sqlite3":
        return None
    path, directory = key_file(), data_dir()
    if not path.is_relative_to(directory):
        return None
    return (
        f"The encryption key for stored passwords is {path}, inside the data directory "
        f"{directory}: a copy of that directory (a backup) holds the key, and with a "
        "database dump it decrypts every stored password. Set POSTA_ENCRYPTION_KEYS "
        "from the environment, or POSTA_KEY_FILE to a path outside the data directory "
        "(README, Backups)."
    )
