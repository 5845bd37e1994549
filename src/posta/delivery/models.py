"""The outbox tables of the delivery app.

The classes are defined in `posta.mail.outbox`, beside the services the web layer
calls: the web layer may not import `posta.delivery` even indirectly (import-linter
contract "views never talk to mail servers"), yet it must read and write these rows.
They belong to this app (app_label "delivery"), whose migrations create them.
"""

from __future__ import annotations

from posta.mail.outbox import OutgoingAttachment, OutgoingMessage

__all__ = ["OutgoingAttachment", "OutgoingMessage"]
