"""`posta autoreply check` against Pigeonhole's own vacation action.

Each message of tests/autoreply_corpus/ goes through the command and through
`sieve-test -e` (dovecot-sieve) running a one-line vacation script with the same
envelope; the two must agree on "reply" or "no reply" for every case, except the
few where Posta is deliberately stricter than Pigeonhole (listed in
`POSTA_STRICTER` with the reason; the test checks that Pigeonhole does answer
those, so the list cannot hide a real disagreement).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command

from posta.mailproto.sieve.vacation import Vacation, render_vacation, script_of
from posta.rules.autoreply_decision import envelope_address, headers_of
from tests.servers.dovecot import ensure_mail_system_user

CORPUS = Path(__file__).resolve().parent.parent / "autoreply_corpus"
RECIPIENT = "me@example.org"
ALIAS = "alias@example.org"
SCRIPT = f'require "vacation"; vacation :addresses ["{ALIAS}"] "I am away.";\n'

# Cases Posta refuses where Pigeonhole answers, as issue 13 asks.
POSTA_STRICTER = {
    "52-no-reply-sender": "noreply / no-reply senders are robots",
    "53-postmaster-sender": "postmaster is a system address (RFC 2142)",
    "54-suppress-autoreply": "X-Auto-Response-Suppress: AutoReply asks for none",
    "55-list-unsubscribe-post": "any List-* field marks list mail",
    "57-owner-uppercase": "system local parts are compared without case",
    "58-request-uppercase": "system local parts are compared without case",
    "61-precedence-padded": "a Precedence value is read without surrounding blanks",
}
# sieve-test takes the envelope sender from -f or the Return-Path field, and reads
# `<>` as "none given" (it falls back to From): a null sender cannot be put to it.
NOT_EXPRESSIBLE = {"47-null-sender"}

pytestmark = pytest.mark.skipif(not shutil.which("sieve-test"), reason="dovecot-sieve missing")


def _cases() -> list[Path]:
    return sorted(p for p in CORPUS.glob("*.eml") if p.stem not in NOT_EXPRESSIBLE)


def _envelope_sender(path: Path) -> str:
    paths = [v for n, v in headers_of(path.read_bytes()) if n.lower() == "return-path"]
    return envelope_address(paths[0])


@pytest.fixture(scope="module")
def sieve_dir() -> Iterator[Path]:
    """A directory sieve-test may write into (its compiled script, a mail store),
    owned by the unprivileged mail user when the tests run as root (pytest's own
    temporary directories are closed to other users)."""
    root = Path(tempfile.mkdtemp(prefix="posta-sieve-test-"))
    os.chmod(root, 0o755)  # noqa: S103 - sieve-test runs as another user
    (root / "vacation.sieve").write_text(SCRIPT)
    (root / "mail").mkdir()
    if os.geteuid() == 0:
        uid, gid = ensure_mail_system_user()
        for path in (root, root / "vacation.sieve", root / "mail"):
            os.chown(path, uid, gid)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def pigeonhole_replies(sieve_dir: Path, message: Path) -> tuple[bool, str]:
    copy = sieve_dir / message.name
    shutil.copyfile(message, copy)
    os.chmod(copy, 0o644)
    command = [
        "sieve-test", "-e", "-l", f"maildir:{sieve_dir / 'mail'}",
        "-f", _envelope_sender(message), "-r", RECIPIENT, "-a", RECIPIENT,
        str(sieve_dir / "vacation.sieve"), str(copy),
    ]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "posta-mail", "--", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    lines = [line for line in done.stderr.splitlines() if "vacation action:" in line]
    assert lines, f"sieve-test said nothing about vacation:\n{done.stderr}"
    return "sent vacation response" in lines[0], lines[0].split("vacation action:", 1)[1]


def posta_line(message: Path) -> str:
    out = io.StringIO()
    with contextlib.suppress(SystemExit):  # `no reply` exits 1
        call_command(
            "autoreply", "check", "--envelope-from", _envelope_sender(message),
            "--recipient", RECIPIENT, "--address", ALIAS, str(message), stdout=out,
        )
    return out.getvalue().strip()


def test_the_command_line_exit_status() -> None:
    posta = str(Path(sys.executable).parent / "posta")
    listed = subprocess.run(
        [posta, "autoreply", "check", "--recipient", RECIPIENT, str(CORPUS / "22-list-id.eml")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert (listed.returncode, listed.stdout.strip()) == (
        1, "no reply: the message came from a mailing list (List-ID header)"
    )
    plain = subprocess.run(
        [posta, "autoreply", "check", "--recipient", RECIPIENT, str(CORPUS / "01-plain-to.eml")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert (plain.returncode, plain.stdout.strip()) == (0, "reply")


def test_the_corpus_is_broad() -> None:
    assert len(_cases()) >= 50


@pytest.mark.parametrize("message", _cases(), ids=lambda p: p.stem)
def test_posta_agrees_with_pigeonhole(sieve_dir: Path, message: Path) -> None:
    theirs, their_words = pigeonhole_replies(sieve_dir, message)
    ours = posta_line(message)
    if message.stem in POSTA_STRICTER:
        assert theirs, f"Pigeonhole refuses too, the case agrees: {their_words}"
        assert ours.startswith("no reply: "), ours
        return
    assert ours.startswith("reply") == theirs and (ours == "reply") == theirs, (
        f"Posta: {ours!r}; Pigeonhole: {their_words}"
    )


def _run_script(sieve_dir: Path, script: str, message: Path) -> str:
    path = sieve_dir / "generated.sieve"
    path.write_text(script)
    if os.geteuid() == 0:
        uid, gid = ensure_mail_system_user()
        os.chown(path, uid, gid)
    command = [
        "sieve-test", "-e", "-l", f"maildir:{sieve_dir / 'mail'}", "-f", "bob@example.com",
        "-r", RECIPIENT, str(path), str(message),
    ]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "posta-mail", "--", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert "error" not in done.stderr.lower().replace("error: sieve: msgid", ""), done.stderr
    return done.stderr


@pytest.mark.parametrize(
    ("start_days", "end_days", "replies"),
    [(-1, 1, True), (1, 2, False), (-2, -1, False), (-1, None, True), (None, -1, False)],
)
def test_the_generated_section_runs_on_pigeonhole(
    sieve_dir: Path, start_days: int | None, end_days: int | None, replies: bool
) -> None:
    """The writer's own text, period included, compiles and runs on Pigeonhole:
    it answers inside the period and not outside it."""
    now = datetime.now(UTC)
    vacation = Vacation(
        body='Back on Monday; "urgent" \\ mail to carol@example.org.',
        subject="Auto: Meeting on Monday",
        from_address=RECIPIENT,
        addresses=(ALIAS,),
        days=3,
        starts_at=None if start_days is None else now + timedelta(days=start_days),
        ends_at=None if end_days is None else now + timedelta(days=end_days),
    )
    section = render_vacation(vacation, with_dates=True)
    copy = sieve_dir / "plain.eml"
    shutil.copyfile(CORPUS / "01-plain-to.eml", copy)
    os.chmod(copy, 0o644)
    log = _run_script(sieve_dir, script_of(section), copy)
    assert ("sent vacation response" in log) == replies, log
