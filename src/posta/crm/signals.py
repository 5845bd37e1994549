"""Signals the CRM sends so that the mail side can act on records without crm
importing mail (DESIGN §4: crm never imports mail)."""

from __future__ import annotations

from django.dispatch import Signal

#: A record was saved with email addresses it did not have before (a new record,
#: or addresses added to one); sent after the transaction commits. kwargs:
#: `kind` (str), `record_id` (int), `owner_id` (int), `emails` (list of the added
#: addresses, lower-cased). posta.mail links the owner's existing mail to it.
record_emails_added = Signal()
