"""A private Dovecot instance on 127.0.0.1 for integration tests.

``start_dovecot()`` writes a config file into a fresh temporary directory and runs
``dovecot -c FILE``: its own base_dir, state_dir, log and instance name, listeners on
free loopback ports for IMAP, POP3, ManageSieve and LMTP, one passwd-file per user with
a plaintext password, and maildirs (``LAYOUT=fs``, "/" separator) owned by the
unprivileged ``posta-mail`` system user (Dovecot refuses to run mail processes as
root). The system's own Dovecot and /etc/dovecot are never touched.

Test state is built the way real mail arrives: ``deliver()`` speaks LMTP (so a client
in IDLE is woken), and folder changes go through ``doveadm`` or a second, independent
IMAP client, never through the code under test.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import email.message
import email.policy
import email.utils
import imaplib
import os
import pwd
import re
import secrets
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import net
from .tls import TlsFiles, make_tls_files

MAIL_SYSTEM_USER = "posta-mail"
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVEADM = shutil.which("doveadm") or "/usr/bin/doveadm"
START_TIMEOUT = 30.0
START_ATTEMPTS = 5

# Folders that get a SPECIAL-USE attribute (RFC 6154) from the config. Names a client
# must recognise by name alone ("Posta inviata", "INBOX/Sent", ...) are deliberately
# absent. None is created automatically: a test creates the folders it needs.
SPECIAL_USE: dict[str, str] = {
    "Drafts": "\\Drafts",
    "Sent": "\\Sent",
    "Trash": "\\Trash",
    "Junk": "\\Junk",
    "Archive": "\\Archive",
    "[Gmail]/Bozze": "\\Drafts",
    "[Gmail]/Posta inviata": "\\Sent",
    "[Gmail]/Cestino": "\\Trash",
    "[Gmail]/Spam": "\\Junk",
    "[Gmail]/Tutti i messaggi": "\\All",
    "[Gmail]/Speciali": "\\Flagged",
}


class DovecotError(RuntimeError):
    """Dovecot did not start, or a doveadm command failed (the message says why)."""


@dataclass
class MailUser:
    """A mailbox on the test server; ``name`` is both the login and the address."""

    name: str
    password: str
    address: str


def ensure_mail_system_user() -> tuple[int, int]:
    """uid and gid of the unprivileged owner of the test maildirs, created if missing."""
    try:
        entry = pwd.getpwnam(MAIL_SYSTEM_USER)
    except KeyError:
        # Several pytest-xdist workers may race here; the loser's useradd fails and the
        # lookup below still finds the user the winner created.
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             MAIL_SYSTEM_USER],
            capture_output=True,
            check=False,
        )
        entry = pwd.getpwnam(MAIL_SYSTEM_USER)
    return entry.pw_uid, entry.pw_gid


def _user_name(user: MailUser | str) -> str:
    return user.name if isinstance(user, MailUser) else user


def _message_bytes(message: bytes | email.message.EmailMessage) -> bytes:
    if isinstance(message, email.message.EmailMessage):
        data = message.as_bytes(policy=email.policy.SMTP)
    else:
        data = bytes(message)
    # LMTP wants CRLF line ends (RFC 5321 §2.3.8); doveadm save accepts either.
    return re.sub(rb"\r?\n", b"\r\n", data)


def _envelope_sender(data: bytes) -> str:
    header_end = data.find(b"\r\n\r\n")
    headers = email.message_from_bytes(data[: header_end if header_end >= 0 else len(data)])
    _, address = email.utils.parseaddr(str(headers.get("From", "")))
    # A From that parseaddr cannot read (a name without brackets) is no MAIL FROM.
    return address if address and not any(c.isspace() for c in address) else "sender@example.test"


def _imap_quote(name: str) -> str:
    """A mailbox name as an IMAP quoted string (modified UTF-7 for non-ASCII)."""
    encoded = _imap_utf7(name)
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _imap_utf7(name: str) -> str:
    # RFC 3501 §5.1.3: printable ASCII stays, "&" becomes "&-", the rest is
    # modified base64 of UTF-16BE between "&" and "-".
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode().rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


class DovecotServer:
    """A running private Dovecot; see the module docstring. Stop it with ``stop()``."""

    host: str = net.HOST

    def __init__(
        self,
        root: Path,
        *,
        tls: bool = False,
        extra_config: str = "",
        log_copy_dir: Path | None = None,
        oauth2_introspection_url: str = "",
        oauth2_mechanisms: str = "xoauth2 oauthbearer",
    ) -> None:
        """Prepare (not start) an instance living in ``root``; ``start()`` runs it.

        ``oauth2_introspection_url`` (``http://client:secret@host:port/introspect``)
        also accepts SASL XOAUTH2 and OAUTHBEARER logins, checked by Dovecot's
        ``oauth2`` passdb at that RFC 7662 introspection endpoint; passwords keep
        working through the passwd-file passdb. ``oauth2_mechanisms`` limits which
        of the two it announces.
        """
        self.root = root
        self.tls = tls
        self.extra_config = extra_config
        self.oauth2_introspection_url = oauth2_introspection_url
        self.oauth2_mechanisms = oauth2_mechanisms
        self.log_copy_dir = log_copy_dir
        self.config_path = str(root / "dovecot.conf")
        self.base_dir = root / "run"
        self.state_dir = root / "state"
        self.log_path = root / "dovecot.log"
        self.passwd_dir = root / "users"
        self.home_root = root / "home"
        self.instance_name = f"posta-test-{root.name}"
        self.imap_port = 0
        self.pop3_port = 0
        self.managesieve_port = 0
        self.lmtp_port = 0
        self.imaps_port: int | None = None
        self.pop3s_port: int | None = None
        self.tls_files: TlsFiles | None = None
        self.ca_file: str | None = None
        self.uid, self.gid = ensure_mail_system_user()
        self._stopped = False

    # ----------------------------------------------------------------- lifecycle

    @property
    def ports(self) -> list[int]:
        """Every port this instance listens on."""
        ports = [self.imap_port, self.pop3_port, self.managesieve_port, self.lmtp_port]
        ports += [p for p in (self.imaps_port, self.pop3s_port) if p]
        return ports

    def start(self) -> None:
        """Run Dovecot and return once IMAP answers with a greeting.

        Free ports are picked just before starting; if another process grabbed one in
        between, the start is retried on new ports. Raises ``DovecotError`` with the tail
        of Dovecot's log when it cannot start.
        """
        self.root.chmod(0o755)  # mail and auth processes run unprivileged
        self.state_dir.mkdir(exist_ok=True)
        self.home_root.mkdir(exist_ok=True)
        self.home_root.chmod(0o755)
        self.passwd_dir.mkdir(exist_ok=True)
        self.passwd_dir.chmod(0o755)
        if self.tls:
            self.tls_files = make_tls_files(self.root / "tls")
            self.ca_file = self.tls_files.ca_file
        last_error = ""
        for _attempt in range(START_ATTEMPTS):
            self._choose_ports()
            Path(self.config_path).write_text(self._config_text())
            # The daemon inherits the output streams: a pipe would never reach EOF.
            startup_log = self.root / "startup.log"
            with startup_log.open("wb") as output:
                result = subprocess.run(
                    [DOVECOT, "-c", self.config_path],
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    timeout=START_TIMEOUT,
                    check=False,
                )
            if result.returncode == 0:
                self._wait_for_greeting()
                return
            last_error = f"{startup_log.read_text(errors='replace').strip()}\n{self.log_tail()}"
            if "in use" not in last_error:
                break
            shutil.rmtree(self.base_dir, ignore_errors=True)
        raise DovecotError(f"Dovecot did not start:\n{last_error}")

    def _choose_ports(self) -> None:
        count = 6 if self.tls else 4
        ports = net.free_ports(count)
        self.imap_port, self.pop3_port, self.managesieve_port, self.lmtp_port = ports[:4]
        if self.tls:
            self.imaps_port, self.pop3s_port = ports[4:6]

    def _wait_for_greeting(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        last = ""
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.imap_port), timeout=5) as sock:
                    greeting = sock.makefile("rb").readline()
                if greeting.startswith(b"* OK"):
                    return
                last = greeting.decode(errors="replace")
            except OSError as error:
                last = str(error)
            time.sleep(0.05)
        tail = self.log_tail()
        self.stop()
        raise DovecotError(f"Dovecot IMAP gave no greeting ({last}):\n{tail}")

    def master_pid(self) -> int | None:
        """The pid of the master process, or None when it is not running."""
        try:
            return int((self.base_dir / "master.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        """Stop the instance, wait until its ports close, delete its files. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        pid = self.master_pid()
        if pid is not None and _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not _wait_dead(pid, timeout=10):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                _wait_dead(pid, timeout=5)
        net.wait_closed(self.ports, timeout=10)
        if self.log_copy_dir is not None and self.log_path.exists():
            with contextlib.suppress(OSError):
                self.log_copy_dir.mkdir(parents=True, exist_ok=True)
                shutil.copy(self.log_path, self.log_copy_dir / "dovecot.log")
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of Dovecot's log (for failure messages)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no Dovecot log)"
        return "\n".join(text.splitlines()[-lines:])

    # ------------------------------------------------------------------- config

    def _oauth2_config(self) -> tuple[str, str, str]:
        """The auth mechanisms, the passwd-file passdb's mechanism limit, and the
        oauth2 passdb (both empty without an introspection URL)."""
        if not self.oauth2_introspection_url:
            return "plain login", "", ""
        ext = self.root / "dovecot-oauth2.conf.ext"
        ext.write_text(
            f"introspection_url = {self.oauth2_introspection_url}\n"
            "introspection_mode = post\n"
            "force_introspection = yes\n"
            "username_attribute = username\n"
            "active_attribute = active\n"
            "active_value = true\n"
        )
        ext.chmod(0o644)
        passdb = (
            "passdb {\n"
            "  driver = oauth2\n"
            f"  mechanisms = {self.oauth2_mechanisms}\n"
            f"  args = {ext}\n"
            "}\n"
        )
        return f"plain login {self.oauth2_mechanisms}", "  mechanisms = plain login\n", passdb

    def _config_text(self) -> str:
        mechanisms, passwd_mechanisms, oauth2_passdb = self._oauth2_config()
        mailboxes = "\n".join(
            f'  mailbox "{name}" {{\n    special_use = {flag}\n    auto = no\n  }}'
            for name, flag in SPECIAL_USE.items()
        )
        if self.tls and self.tls_files is not None:
            ssl = (
                "ssl = yes\n"
                f"ssl_cert = <{self.tls_files.cert_file}\n"
                f"ssl_key = <{self.tls_files.key_file}\n"
                "ssl_dh = </usr/share/dovecot/dh.pem\n"
            )
        else:
            ssl = "ssl = no\n"
        imaps = self.imaps_port or 0
        pop3s = self.pop3s_port or 0
        return f"""\
# Private Dovecot for Posta's tests; written by tests/servers/dovecot.py.
base_dir = {self.base_dir}
state_dir = {self.state_dir}
instance_name = {self.instance_name}
log_path = {self.log_path}
listen = {self.host}
protocols = imap pop3 lmtp sieve
hostname = mail.example.test
postmaster_address = postmaster@example.test

{ssl}
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
auth_verbose = yes
# A wrong password answers at once: tests of bad credentials need not wait.
auth_failure_delay = 0

# One passwd-file per user: Dovecot re-reads a changed passwd-file at most once a
# second, so a user added to a shared file could stay unknown for that long.
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.passwd_dir}/%u
{passwd_mechanisms}}}
{oauth2_passdb}userdb {{
  driver = passwd-file
  args = username_format=%u {self.passwd_dir}/%u
}}
first_valid_uid = {self.uid}
last_valid_uid = {self.uid}
first_valid_gid = {self.gid}
last_valid_gid = {self.gid}

# LAYOUT=fs: folder names may contain "." (Maildir++ would refuse "Clienti.2024").
mail_location = maildir:~/Maildir:LAYOUT=fs
# Test mail is disposable; fsync only slows the suite down.
mail_fsync = never
# Tests open many connections for one user from one address.
mail_max_userip_connections = 200

namespace inbox {{
  inbox = yes
  separator = /
  prefix =
{mailboxes}
}}

service imap-login {{
  inet_listener imap {{
    address = {self.host}
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = {self.host}
    port = {imaps}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = {self.host}
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    address = {self.host}
    port = {pop3s}
    ssl = yes
  }}
}}
service managesieve-login {{
  inet_listener sieve {{
    address = {self.host}
    port = {self.managesieve_port}
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = {self.host}
    port = {self.lmtp_port}
  }}
}}

protocol imap {{
  mail_max_userip_connections = 200
}}
protocol pop3 {{
  mail_max_userip_connections = 200
}}
protocol lmtp {{
  mail_plugins = $mail_plugins sieve
}}
plugin {{
  sieve = file:~/sieve;active=~/.dovecot.sieve
}}

{self.extra_config}
"""

    # -------------------------------------------------------------------- users

    def add_user(
        self,
        password: str = "secret",  # noqa: S107 - a throw-away mailbox on loopback
        name: str | None = None,
    ) -> MailUser:
        """Create a mailbox user (unique name unless given) with an empty maildir home."""
        if name is None:
            name = f"u{secrets.token_hex(5)}@example.test"
        name = name.lower()  # Dovecot lower-cases LMTP recipients
        for value in (name, password):
            if any(char in value for char in ":\n\r"):
                raise ValueError(f"not allowed in a passwd-file entry: {value!r}")
        home = self.home_root / name
        if "/" in name or name.startswith("."):
            raise ValueError(f"not allowed as a test user name: {name!r}")
        home.mkdir()
        os.chown(home, self.uid, self.gid)
        home.chmod(0o700)
        entry = f"{name}:{{PLAIN}}{password}:{self.uid}:{self.gid}::{home}::\n"
        # Written whole under a temporary name, so Dovecot never reads half a file.
        partial = self.passwd_dir / f".{name}.tmp"
        partial.write_text(entry)
        partial.chmod(0o644)
        partial.rename(self.passwd_dir / name)
        return MailUser(name=name, password=password, address=name)

    # ------------------------------------------------------------------ doveadm

    def doveadm(self, *args: str, stdin: bytes | None = None) -> str:
        """Run ``doveadm -c CONFIG ARGS``; return its output, raise on failure."""
        result = subprocess.run(
            [DOVEADM, "-c", self.config_path, *args],
            input=stdin,
            capture_output=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise DovecotError(
                f"doveadm {' '.join(args)} failed ({result.returncode}): "
                f"{result.stderr.decode(errors='replace').strip()}"
            )
        return result.stdout.decode(errors="replace")

    def create_folder(self, user: MailUser | str, name: str, *, subscribe: bool = True) -> None:
        """Create folder ``name`` ("/"-separated, UTF-8) for ``user``."""
        args = ["mailbox", "create", "-u", _user_name(user)]
        if subscribe:
            args.append("-s")
        self.doveadm(*args, name)

    def delete_folder(self, user: MailUser | str, name: str) -> None:
        """Delete folder ``name`` with its messages, and unsubscribe it."""
        self.doveadm("mailbox", "delete", "-s", "-u", _user_name(user), name)

    def rename_folder(self, user: MailUser | str, old: str, new: str) -> None:
        """Rename folder ``old`` to ``new``, moving its subscription along."""
        self.doveadm("mailbox", "rename", "-s", "-u", _user_name(user), old, new)

    def folders(self, user: MailUser | str) -> list[str]:
        """Every folder name of ``user`` (UTF-8, "/"-separated)."""
        return self.doveadm("mailbox", "list", "-u", _user_name(user)).splitlines()

    def status(self, user: MailUser | str, folder: str = "INBOX") -> dict[str, int]:
        """messages, uidnext, uidvalidity, highestmodseq, unseen of ``folder``."""
        fields = "messages uidnext uidvalidity highestmodseq unseen"
        output = self.doveadm(
            "-f", "flow", "mailbox", "status", "-u", _user_name(user), fields, folder
        )
        return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", output)}

    def uids(self, user: MailUser | str, folder: str = "INBOX") -> list[int]:
        """The UIDs of the messages in ``folder``, ascending."""
        output = self.doveadm("search", "-u", _user_name(user), "mailbox", folder, "all")
        return sorted(int(line.split()[1]) for line in output.splitlines() if line.strip())

    def reset_uidvalidity(self, user: MailUser | str, folder: str) -> int:
        """Give ``folder`` a new UIDVALIDITY, keeping its messages; return the new value.

        What a server does after a mailbox rebuild (RFC 3501 §2.3.1.1): every UID a client
        remembered is void, though the messages are the same.
        """
        current = self.status(user, folder)["uidvalidity"]
        new_value = current + 1000 + secrets.randbelow(1000)
        self.doveadm(
            "mailbox", "update", "-u", _user_name(user), "--uid-validity", str(new_value), folder
        )
        return new_value

    def renumber(self, user: MailUser | str, folder: str, *, drop_lowest: int = 0) -> int:
        """Make the server renumber ``folder``, as after an index repair or a migration;
        return its new UIDVALIDITY.

        Expunges the ``drop_lowest`` lowest UIDs first, then removes the folder's UID
        list and index and runs ``doveadm force-resync``: the messages left get new UIDs
        from 1 under a new UIDVALIDITY (RFC 3501 §2.3.1.1), so a remembered UID now
        names another message, or none.
        """
        name = _user_name(user)
        with contextlib.suppress(DovecotError):
            self.kick(name)  # fails when nobody is connected
        doomed = self.uids(name, folder)[:drop_lowest]
        if doomed:
            uid_set = ",".join(str(uid) for uid in doomed)
            self.doveadm("expunge", "-u", name, "mailbox", folder, "uid", uid_set)
        path = Path(self.doveadm("mailbox", "path", "-u", name, folder).strip())
        for stale in [path / "dovecot-uidlist", *path.glob("dovecot.index*")]:
            stale.unlink(missing_ok=True)
        self.doveadm("force-resync", "-u", name, folder)
        return self.status(name, folder)["uidvalidity"]

    def kick(self, user: MailUser | str) -> None:
        """Drop every open IMAP/POP3 connection of ``user`` (``doveadm kick``).

        The client gets ``* BYE`` and a closed socket: a server restart or a network
        failure as the client sees it.
        """
        self.doveadm("kick", _user_name(user))

    # --------------------------------------------------------------------- mail

    def deliver(
        self,
        user: MailUser | str,
        message: bytes | email.message.EmailMessage,
        *,
        folder: str = "INBOX",
        flags: str = "",
    ) -> None:
        """Put ``message`` into ``user``'s ``folder``, optionally with IMAP ``flags``.

        INBOX without flags goes through LMTP, a real delivery (Sieve runs, IDLE wakes);
        anything else is ``doveadm save`` into the existing folder plus ``flags add``.
        """
        data = _message_bytes(message)
        name = _user_name(user)
        if folder == "INBOX" and not flags:
            with smtplib.LMTP(self.host, self.lmtp_port, timeout=30) as lmtp:
                refused = lmtp.sendmail(_envelope_sender(data), [name], data)
            if refused:
                raise DovecotError(f"LMTP refused {name}: {refused}")
            return
        uidnext = self.status(name, folder)["uidnext"]
        self.doveadm("save", "-u", name, "-m", folder, stdin=data)
        if flags:
            # The saved message is the only one at or above the old UIDNEXT.
            self.doveadm(
                "flags", "add", "-u", name, flags, "mailbox", folder, "uid", f"{uidnext}:*"
            )

    @contextlib.contextmanager
    def _session(self, user: MailUser | str, folder: str) -> Iterator[imaplib.IMAP4]:
        client = self.imap(user)
        try:
            typ, data = client.select(_imap_quote(folder))
            if typ != "OK":
                raise DovecotError(f"SELECT {folder} failed: {data!r}")
            yield client
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                client.logout()

    def imap(self, user: MailUser | str) -> imaplib.IMAP4:
        """A new IMAP connection logged in as ``user`` (plaintext); the caller logs out."""
        name = _user_name(user)
        password = user.password if isinstance(user, MailUser) else self._password(name)
        client = imaplib.IMAP4(self.host, self.imap_port, timeout=30)
        client.login(name, password)
        return client

    def _password(self, name: str) -> str:
        entry = (self.passwd_dir / name).read_text()
        return entry.split(":")[1].removeprefix("{PLAIN}")

    def set_flags(
        self, user: MailUser | str, folder: str, uid: int, flags: str, *, add: bool = True
    ) -> None:
        """Add (or with ``add=False`` remove) ``flags`` on message ``uid`` from another client."""
        with self._session(user, folder) as client:
            command = "+FLAGS.SILENT" if add else "-FLAGS.SILENT"
            typ, data = client.uid("STORE", str(uid), command, f"({flags})")
            if typ != "OK":
                raise DovecotError(f"STORE failed: {data!r}")

    def expunge(self, user: MailUser | str, folder: str, uid: int) -> None:
        """Expunge message ``uid`` from ``folder`` from another client."""
        with self._session(user, folder) as client:
            client.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)")
            typ, data = client.uid("EXPUNGE", str(uid))
            if typ != "OK":
                raise DovecotError(f"UID EXPUNGE failed: {data!r}")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in {"Z", "X"}  # a zombie has exited; only its parent can reap it


def _wait_dead(pid: int, *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def start_dovecot(
    tmp_path: Path | None = None,
    *,
    tls: bool = False,
    extra_config: str = "",
    oauth2_introspection_url: str = "",
    oauth2_mechanisms: str = "xoauth2 oauthbearer",
) -> DovecotServer:
    """Start a private Dovecot and return it running; the caller must ``stop()`` it.

    Its files live in a new directory under the system temp dir, not in ``tmp_path``:
    pytest's temp dirs are private to root, and Dovecot's mail processes run as
    ``posta-mail``. ``tmp_path`` receives a copy of the Dovecot log when it stops.
    ``tls=True`` adds ``ssl = yes`` with a fresh certificate (``ca_file``) plus implicit
    TLS ports; ``extra_config`` is appended to the generated config. Sieve's vacation and
    redirect send through ``/usr/sbin/sendmail`` unless told otherwise; to catch them,
    start with ``extra_config=f"submission_host = 127.0.0.1:{smtp_server.port}"``.
    ``oauth2_introspection_url`` adds OAuth2 logins (see ``DovecotServer``).
    """
    root = Path(tempfile.mkdtemp(prefix="posta-dovecot-"))
    server = DovecotServer(
        root,
        tls=tls,
        extra_config=extra_config,
        log_copy_dir=tmp_path,
        oauth2_introspection_url=oauth2_introspection_url,
        oauth2_mechanisms=oauth2_mechanisms,
    )
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    # A run that dies before its teardown still stops the daemon it started.
    atexit.register(server.stop)
    return server
