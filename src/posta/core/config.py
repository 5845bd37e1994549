"""Where Posta keeps its files, and the secrets it makes for itself on first start.

Settings read the environment; this module only turns those values into paths and
keys. A key generated here is written once, with mode 0600, and read back on every
later start, so a restart never loses the ability to decrypt stored passwords.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet


def data_dir() -> Path:
    """The directory for the embedded database, queue, blobs and generated keys."""
    path = Path(os.environ.get("POSTA_DATA_DIR", "var")).resolve()
    path.mkdir(parents=True, exist_ok=True)
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
    key_file = data_dir() / "encryption.keys"
    stored = _read_or_create(key_file, Fernet.generate_key().decode())
    return [key.strip() for key in stored.replace("\n", ",").split(",") if key.strip()]
