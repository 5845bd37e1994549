"""A package that reacts to new mail, as filters, out-of-office or CRM linking will:
it subscribes to posta.mail.signals.messages_stored and imports nothing else of
Posta (tests/integration/test_ingest.py checks that importing it pulls in neither
posta.sync nor posta.delivery)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from posta.mail.signals import messages_stored


@dataclass(frozen=True)
class Announcement:
    user_id: int
    message_ids: tuple[int, ...]
    folder_id: int | None
    source: str


@dataclass
class Recorder:
    """Every messages_stored received while connected, from any thread."""

    seen: list[Announcement] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(
        self,
        sender: Any,
        *,
        user_id: int,
        message_ids: list[int],
        folder_id: int | None,
        source: str,
        **_: Any,
    ) -> None:
        with self._lock:
            self.seen.append(Announcement(user_id, tuple(message_ids), folder_id, source))

    def connect(self) -> None:
        messages_stored.connect(self, dispatch_uid="tests-ingest-recorder")

    def disconnect(self) -> None:
        messages_stored.disconnect(dispatch_uid="tests-ingest-recorder")

    def ids(self, *, source: str | None = None) -> list[int]:
        with self._lock:
            return [
                i for a in self.seen if source is None or a.source == source
                for i in a.message_ids
            ]
