"""MIME reader micro-benchmark: the per-message cost of the body mirror's reading.

    .venv/bin/python bench/mime_bench.py [--messages N] [--rounds R] [--profile]

Generates N varied messages (the sync benchmark's mailbox: plain, alternative,
attachments, encoded headers; and shapes of real mail: nested related/mixed,
forwarded messages, quoted-printable Latin-1, ISO-2022-JP, an unquoted
boundary with "=", a multipart without its boundary), then measures, in the
same run and on the same messages:

- posta: posta.sync.parsing.summarize_body, i.e. parse_message without the
  envelope (tree building, walk, decoding, snippet), what the body mirror does
  for each message;
- reference: the stdlib `email.message_from_bytes(policy=default)` and a walk
  that decodes every text part and names every attachment.

Prints the best of R rounds (CPU time, the two taking turns) as µs per
message and the ratio. `--profile` prints
the cProfile of the posta reading. Never part of the test run.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import email
import email.policy
import pstats
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.sync_bench import generate_message  # noqa: E402

from posta.sync.parsing import summarize_body  # noqa: E402


def _head(index: int, content_type: str) -> bytes:
    return (
        f"From: Anna <anna@example.test>\r\nTo: bob@example.test\r\n"
        f"Subject: shape {index}\r\nDate: Mon, 02 Mar 2026 10:00:00 +0100\r\n"
        f"Message-ID: <shape{index}@example.test>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()


def shapes(index: int, rng: random.Random) -> bytes:
    """A message of one of the shapes real mail has beyond the sync benchmark's."""
    words = " ".join(rng.choice(("alpha", "beta", "città", "perché", "gamma")) for _ in range(40))
    png = base64.b64encode(rng.randbytes(3000)).decode()
    kind = index % 6
    if kind == 0:  # HTML with an inline image and an attachment (Outlook-like)
        return _head(index, 'multipart/mixed; boundary="m"') + (
            '--m\r\nContent-Type: multipart/related; boundary="r"\r\n\r\n'
            '--r\r\nContent-Type: multipart/alternative; boundary="a"\r\n\r\n'
            f"--a\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{words}\r\n"
            "--a\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
            f'<p>{words}<img src="cid:i"></p>\r\n'
            "--a--\r\n"
            f"--r\r\nContent-Type: image/png\r\nContent-ID: <i>\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{png}\r\n--r--\r\n"
            "--m\r\nContent-Type: application/pdf; name=a.pdf\r\n"
            "Content-Disposition: attachment; filename=a.pdf\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{png}\r\n--m--\r\n"
        ).encode()
    if kind == 1:  # a forwarded message
        inner = _head(index + 100000, "text/plain; charset=utf-8") + words.encode()
        return (
            _head(index, 'multipart/mixed; boundary="f"')
            + b"--f\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n"
            + b"--f\r\nContent-Type: message/rfc822\r\n\r\n"
            + inner
            + b"\r\n--f--\r\n"
        )
    if kind == 2:  # quoted-printable Latin-1
        text = words.replace("à", "=E0").replace("é", "=E9")
        return (
            _head(index, "text/plain; charset=iso-8859-1")[:-2]
            + b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            + text.encode()
        )
    if kind == 3:  # ISO-2022-JP
        text = "明日の会議は十時からです。".encode("iso-2022-jp")
        return _head(index, "text/plain; charset=ISO-2022-JP") + text
    if kind == 4:  # an unquoted boundary with "="
        return _head(index, "multipart/alternative; boundary=----=_NextPart_0") + (
            f"------=_NextPart_0\r\nContent-Type: text/plain\r\n\r\n{words}\r\n"
            f"------=_NextPart_0\r\nContent-Type: text/html\r\n\r\n<p>{words}</p>\r\n"
            "------=_NextPart_0--\r\n"
        ).encode()
    # a multipart without its boundary parameter
    return _head(index, "multipart/mixed") + (
        f"--x\r\nContent-Type: text/plain\r\n\r\n{words}\r\n--x--\r\n"
    ).encode()


def corpus(count: int) -> list[bytes]:
    rng = random.Random(18)
    attachment = base64.encodebytes(rng.randbytes(15000)).replace(b"\n", b"\r\n")
    out = []
    for index in range(count):
        if index % 4 == 3:
            out.append(shapes(index, rng))
        else:
            out.append(generate_message(index, rng, attachment)[0])
    return out


def stdlib_walk(raw: bytes) -> None:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    for part in message.walk():
        if part.is_multipart():
            continue
        if part.get_content_disposition() == "attachment" or part.get_filename():
            part.get_filename()
        elif part.get_content_maintype() == "text":
            try:
                part.get_content()
            except (LookupError, ValueError):
                pass


def posta_read(raw: bytes) -> None:
    summarize_body(raw)


def best_of(
    rounds: int, messages: list[bytes], readers: list[Callable[[bytes], None]]
) -> list[float]:
    """Best µs of CPU time per message of each reader over `rounds` passes, the
    readers taking turns in each round (a busy machine slows both alike)."""
    best = [float("inf")] * len(readers)
    for _round in range(rounds):
        for number, read in enumerate(readers):
            start = time.process_time()
            for raw in messages:
                read(raw)
            best[number] = min(best[number], time.process_time() - start)
    return [seconds / len(messages) * 1e6 for seconds in best]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    messages = corpus(args.messages)
    size = sum(map(len, messages)) / len(messages)
    print(f"{len(messages)} messages, {size / 1024:.1f} KiB on average")
    reference, posta = best_of(args.rounds, messages, [stdlib_walk, posta_read])
    print(f"reference: email.message_from_bytes(policy=default) + walk: {reference:.1f} µs/message")
    print(f"posta: summarize_body (parse_message, one MIME reader): {posta:.1f} µs/message")
    print(f"RESULT mime_ratio={posta / reference:.3f}  (posta ÷ reference, lower is better)")
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        for raw in messages:
            posta_read(raw)
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
