"""A small POP3 server (RFC 1939) for the cases Dovecot does not show: a server
without UIDL, and one that drops the connection in the middle of a RETR.

It keeps its mailbox in memory (`messages`, a list of bytes, oldest first) and
follows the parts of RFC 1939 an importer relies on: message numbers count from 1
in each session; DELE only marks, and the marked messages leave the mailbox at
QUIT alone, so a connection that drops deletes nothing; UIDL (when offered)
answers a stable id per message. Threads, one per connection, on 127.0.0.1.

    server = start_pop3(messages=[...], uidl=False)
    server.drop_after_lines = 5  # the next RETR sends 5 lines of the message, then closes
    ...
    server.stop()
"""

from __future__ import annotations

import hashlib
import socket
import socketserver
import threading
from dataclasses import dataclass, field


@dataclass
class Pop3Mailbox:
    messages: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def uid_of(self, raw: bytes) -> str:
        return hashlib.sha1(raw).hexdigest()  # noqa: S324 - a name, not a signature


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def send(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        pop = self.server.owner
        mailbox = pop.mailbox
        self.send("+OK POP3 test server ready")
        user = ""
        logged_in = False
        snapshot: list[bytes] = []
        deleted: set[int] = set()
        while True:
            raw_line = self.rfile.readline(4096)
            if not raw_line:
                return  # dropped: nothing marked is removed
            command, _sep, argument = raw_line.decode("utf-8", "replace").strip().partition(" ")
            command = command.upper()
            pop.commands.append(command)
            if command == "QUIT":
                if logged_in:
                    with mailbox.lock:
                        gone = {id(snapshot[n - 1]) for n in deleted}
                        mailbox.messages[:] = [m for m in mailbox.messages if id(m) not in gone]
                self.send("+OK bye")
                return
            if command == "CAPA":
                self.send("+OK")
                for capability in ["USER", *(["UIDL"] if pop.uidl else [])]:
                    self.send(capability)
                self.send(".")
            elif command == "USER":
                user = argument
                self.send("+OK")
            elif command == "PASS":
                if user == pop.username and (pop.password is None or argument == pop.password):
                    logged_in = True
                    with mailbox.lock:
                        snapshot = list(mailbox.messages)
                    self.send("+OK logged in")
                else:
                    self.send("-ERR [AUTH] Authentication failed.")
            elif not logged_in:
                self.send("-ERR log in first")
            elif command == "STAT":
                live = [m for n, m in enumerate(snapshot, 1) if n not in deleted]
                self.send(f"+OK {len(live)} {sum(len(m) for m in live)}")
            elif command == "LIST":
                self.send("+OK")
                for n, m in enumerate(snapshot, 1):
                    if n not in deleted:
                        self.send(f"{n} {len(m)}")
                self.send(".")
            elif command == "UIDL" and pop.uidl:
                self.send("+OK")
                for n, m in enumerate(snapshot, 1):
                    if n not in deleted:
                        self.send(f"{n} {mailbox.uid_of(m)}")
                self.send(".")
            elif command == "RETR" and argument.isdigit() and 0 < int(argument) <= len(snapshot):
                if not self._retr(snapshot[int(argument) - 1]):
                    return
            elif command == "DELE" and argument.isdigit() and 0 < int(argument) <= len(snapshot):
                deleted.add(int(argument))
                self.send("+OK marked")
            elif command == "NOOP":
                self.send("+OK")
            else:
                self.send("-ERR unknown command")

    def _retr(self, message: bytes) -> bool:
        """Send one message, dot-stuffed (RFC 1939 §3); False when the server is
        told to drop the connection part-way."""
        pop = self.server.owner
        self.send(f"+OK {len(message)} octets")
        lines = message.replace(b"\r\n", b"\n").rstrip(b"\n").split(b"\n")
        drop_at = pop.drop_after_lines
        for sent, line in enumerate(lines):
            if drop_at is not None and sent >= drop_at:
                pop.drop_after_lines = None
                pop.drops += 1
                self.wfile.flush()
                self.request.shutdown(socket.SHUT_RDWR)
                return False
            if line.startswith(b"."):
                line = b"." + line
            self.wfile.write(line + b"\r\n")
        self.wfile.write(b".\r\n")
        return True


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: Pop3Server


class Pop3Server:
    """See the module docstring. `password=None` accepts any password."""

    def __init__(
        self, *, messages: list[bytes] | None = None, uidl: bool = True,
        username: str = "pop@example.test", password: str | None = "secret",  # noqa: S107
    ) -> None:
        self.mailbox = Pop3Mailbox(messages=list(messages or []))
        self.uidl = uidl
        self.username = username
        self.password = password
        self.drop_after_lines: int | None = None
        self.drops = 0
        self.commands: list[str] = []
        self.host = "127.0.0.1"
        self._server = _Server((self.host, 0), _Handler)
        self._server.owner = self
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def messages(self) -> list[bytes]:
        with self.mailbox.lock:
            return list(self.mailbox.messages)

    def start(self) -> Pop3Server:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def start_pop3(**options: object) -> Pop3Server:
    return Pop3Server(**options).start()  # type: ignore[arg-type]
