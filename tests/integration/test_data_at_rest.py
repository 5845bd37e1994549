"""Data at rest: what the `posta` command creates is the owner's alone, and it warns
when the encryption key travels with the data directory of a deployment whose
database is elsewhere. Each test runs `posta` as a separate process, started with a
permissive umask (022) so that the modes seen are the ones Posta chose."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

# Never connected to: `posta check` only needs a PostgreSQL engine configured.
POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/posta_ssrf"
KEY_WARNING = "inside the data directory"
_OUR_VARIABLES = (
    "POSTA_DATABASE_URL",
    "POSTA_ENCRYPTION_KEYS",
    "POSTA_SECRET_KEY",
    "POSTA_KEY_FILE",
    "POSTA_REDIS_URL",
    "POSTA_SUPERVISED",
)

STORE_BLOBS = (
    "from posta.mail import blobs; "
    "blobs.put(b'one message'); blobs.put_many([b'another message', b'a third'])"
)


def posta(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in _OUR_VARIABLES}
    environment.update({"POSTA_DATA_DIR": str(data_dir), "POSTA_LOG_LEVEL": "WARNING", **env})
    result = subprocess.run(
        [sys.executable, "-m", "posta.cli", *args],
        env=environment,
        umask=0o022,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def _modes(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def test_data_dir_database_queue_blobs_and_keys_are_private(tmp_path: Path) -> None:
    data = tmp_path / "new" / "data"
    posta(data, "migrate", "--verbosity", "0")
    posta(data, "shell", "-c", STORE_BLOBS)

    modes = _modes(data)
    for name in ("posta.sqlite3", "queue.sqlite3", "secret.key", "encryption.keys"):
        assert name in modes, sorted(modes)
    blob_files = [name for name in modes if name.startswith("blobs/raw/") and name.count("/") == 3]
    assert len(blob_files) == 3, sorted(modes)
    assert "blobs" in modes
    open_to_others = {name: oct(mode) for name, mode in modes.items() if mode & 0o077}
    assert open_to_others == {}
    assert modes["."] == 0o700
    assert all(modes[name] == 0o600 for name in blob_files)


def test_key_file_elsewhere(tmp_path: Path) -> None:
    data = tmp_path / "data"
    key_file = tmp_path / "secrets" / "posta" / "encryption.keys"
    posta(data, "migrate", "--verbosity", "0", POSTA_KEY_FILE=str(key_file))
    assert not (data / "encryption.keys").exists()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    Fernet(key_file.read_text().strip().encode())  # a usable key
    # The same key is read back on the next start, not replaced.
    before = key_file.read_text()
    posta(data, "check", POSTA_KEY_FILE=str(key_file))
    assert key_file.read_text() == before


@pytest.mark.parametrize(
    ("case", "warned"),
    [
        ("postgres, key generated into the data dir", True),
        ("postgres, POSTA_KEY_FILE inside the data dir", True),
        ("postgres, POSTA_KEY_FILE elsewhere", False),
        ("postgres, POSTA_ENCRYPTION_KEYS", False),
        ("sqlite, key generated into the data dir", False),
        # `posta run` warns once itself; its web, worker and sync children do not.
        ("postgres, key in the data dir, a child of posta run", False),
    ],
)
def test_start_up_warning_when_the_key_travels_with_the_data(
    tmp_path: Path, case: str, warned: bool
) -> None:
    data = tmp_path / "data"
    env: dict[str, str] = {}
    if case.startswith("postgres"):
        env["POSTA_DATABASE_URL"] = POSTGRES_URL
    if "inside" in case:
        env["POSTA_KEY_FILE"] = str(data / "keys" / "posta.keys")
    elif "elsewhere" in case:
        env["POSTA_KEY_FILE"] = str(tmp_path / "keys" / "posta.keys")
    elif "POSTA_ENCRYPTION_KEYS" in case:
        env["POSTA_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    if "child" in case:
        env["POSTA_SUPERVISED"] = "1"
    result = posta(data, "check", **env)
    assert (KEY_WARNING in result.stderr) is warned, result.stderr
    if warned:
        assert "POSTA_KEY_FILE" in result.stderr and "POSTA_ENCRYPTION_KEYS" in result.stderr
        assert result.stderr.count(KEY_WARNING) == 1
