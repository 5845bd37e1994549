"""The `posta` command.

posta run       web + worker + sync together, on the embedded defaults
posta web       the web application (ASGI, uvicorn)
posta worker    the job worker (Huey)
posta sync      the sync service
posta <cmd>     any Django management command (migrate, createsuperuser, ...)
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from types import FrameType

ROLES = ("web", "worker", "sync")
# Set by `posta run` for its children, so that start-up warnings are given once.
_SUPERVISED = "POSTA_SUPERVISED"


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "posta.settings")
    import django

    django.setup()
    if not os.environ.get(_SUPERVISED):
        _warn_at_start_up()


def _warn_at_start_up() -> None:
    from django.conf import settings

    from posta.core import config

    warning = config.key_beside_data_warning(
        database_engine=settings.DATABASES["default"]["ENGINE"]
    )
    if warning:
        logging.getLogger("posta").warning(warning)


def _bind() -> tuple[str, int]:
    host, _, port = os.environ.get("POSTA_BIND", "127.0.0.1:8000").rpartition(":")
    return host or "127.0.0.1", int(port)


def run_web() -> None:
    import uvicorn

    host, port = _bind()
    uvicorn.run(
        "posta.asgi:application",
        host=host,
        port=port,
        log_level=os.environ.get("POSTA_LOG_LEVEL", "info").lower(),
        lifespan="off",
    )


def run_supervisor() -> int:
    """Migrate, then run web, worker and sync as child processes.

    A child that dies is started again after a pause that grows with each quick
    death; SIGINT/SIGTERM stop all three.
    """
    _setup_django()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    children: dict[str, subprocess.Popen[bytes]] = {}
    started: dict[str, float] = {}
    backoff: dict[str, float] = dict.fromkeys(ROLES, 1.0)
    stopping = False

    def start(role: str) -> None:
        children[role] = subprocess.Popen(  # noqa: S603  fixed argv of our own
            [sys.executable, "-m", "posta.cli", role], env={**os.environ, _SUPERVISED: "1"}
        )
        started[role] = time.monotonic()

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for role in ROLES:
        start(role)
    host, port = _bind()
    print(f"Posta is running on http://{host}:{port}/", flush=True)
    while not stopping:
        time.sleep(0.5)
        for role, child in list(children.items()):
            if child.poll() is None or stopping:
                continue
            lived = time.monotonic() - started[role]
            backoff[role] = 1.0 if lived > 60 else min(backoff[role] * 2, 60.0)
            print(f"posta {role} exited ({child.returncode}); restarting", flush=True)
            time.sleep(backoff[role])
            if not stopping:
                start(role)
    for child in children.values():
        child.terminate()
    for child in children.values():
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
    return 0


def main(argv: list[str] | None = None) -> int:
    # Before anything is created: the data directory holds mail, the database and
    # the keys, so every file and directory Posta makes is the owner's alone
    # (0600/0700), whatever umask the service manager or shell handed down.
    os.umask(0o077)
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args else "help"
    if command == "run":
        return run_supervisor()
    if command == "web":
        _setup_django()
        run_web()
        return 0
    _setup_django()
    from django.core.management import execute_from_command_line

    if command == "worker":
        execute_from_command_line(["posta", "run_huey", *args[1:]])
    elif command == "sync":
        execute_from_command_line(["posta", "sync_service", *args[1:]])
    else:
        execute_from_command_line(["posta", *args])
    return 0


if __name__ == "__main__":
    sys.exit(main())
