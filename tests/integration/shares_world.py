"""Two colleagues on the test Dovecot, A with a conversation to share and mail
that is not to be shared, B with an account of their own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from posta.accounts.models import Account, Folder
from posta.mail.models import Message
from posta.sync.account_pass import sync_account_once
from posta.users.models import User
from tests.integration.test_mail_screen import rich_message
from tests.integration.test_send import make_sender
from tests.integration.test_sync_checker import message
from tests.servers.dovecot import DovecotServer, MailUser
from tests.servers.smtp import SmtpServer


@dataclass
class Colleagues:
    a: User
    b: User
    a_account: Account
    b_account: Account
    a_mailbox: MailUser
    b_mailbox: MailUser
    first: Message  # the conversation: first and answer
    answer: Message
    private: Message  # same folder, not shared, with an attachment
    draft: Message  # in A's Drafts

    def inbox(self) -> Folder:
        return Folder.objects.get(account=self.a_account, name="INBOX")


def two_colleagues(dovecot: DovecotServer, smtp: SmtpServer, settings: Any) -> Colleagues:
    """A and B, each with an account that sends through `smtp` (handed to Dovecot)."""
    settings.POSTA_ALLOWED_MAIL_HOSTS = [dovecot.host]
    if not User.objects.filter(is_superuser=True).exists():
        User.objects.create_superuser("root", "root@example.test", "pw-unused-123")
    a_box, b_box = dovecot.add_user(), dovecot.add_user()
    dovecot.create_folder(a_box, "Work")
    a_account = make_sender(dovecot, smtp, a_box, username="anna")
    b_account = make_sender(dovecot, smtp, b_box, username="bruno")
    a, b = a_account.user, b_account.user
    a.first_name, a.email = "Anna", a_box.address
    a.save()
    b.first_name, b.email = "Bruno", b_box.address
    b.save()
    dovecot.deliver(a_box, message(
        "Preventivo impianto", msgid="<p1@example.test>", body="Ci mandate un preventivo?\n",
        from_="Carla <carla@example.test>", to=a_box.address,
    ))
    dovecot.deliver(a_box, message(
        "Re: Preventivo impianto", msgid="<p2@example.test>", body="E i tempi?\n",
        from_="Carla <carla@example.test>", to=a_box.address,
        date="Mon, 02 Mar 2026 11:00:00 +0100",
        in_reply_to="<p1@example.test>", references="<p1@example.test>",
    ))
    dovecot.deliver(a_box, rich_message("private offer", "<p>not for colleagues</p>"))
    dovecot.deliver(a_box, message("my draft", msgid="<d1@example.test>"), folder="Drafts",
                    flags="\\Draft")
    sync_account_once(a_account.pk)
    sync_account_once(b_account.pk)
    return Colleagues(
        a=a, b=b, a_account=a_account, b_account=b_account, a_mailbox=a_box, b_mailbox=b_box,
        first=Message.objects.get(user=a, message_id="p1@example.test"),
        answer=Message.objects.get(user=a, message_id="p2@example.test"),
        private=Message.objects.get(user=a, subject="private offer"),
        draft=Message.objects.get(user=a, message_id="d1@example.test"),
    )
