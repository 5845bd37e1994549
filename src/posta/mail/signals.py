"""Signals the mail app sends so that the worker side can act, without the mail app
importing it (dependency inversion: posta.mail never imports posta.sync; the sync
app connects its receivers in its AppConfig.ready()).

Both are sent after the transaction that wrote the state commits
(`transaction.on_commit`), so a receiver never sees rows that may still roll back.
The rows are the source of truth (DESIGN §2): a lost signal only delays the work,
which the periodic sweeps and sync passes pick up.
"""

from __future__ import annotations

from django.dispatch import Signal

#: RemoteAction rows were written; kwargs: `account_ids` (sorted list of int).
actions_created = Signal()

#: The user opened messages whose body is not stored yet; kwargs: `account_id`
#: (int) and `message_ids` (list of int) to fetch from that account now.
body_fetch_requested = Signal()
