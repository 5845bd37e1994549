"""Lift login locks from the command line: for an administrator who locked
themselves out, when no other administrator can unlock them on the user list.

    posta unlock_login NAME_OR_ADDRESS ...
    posta unlock_login --list
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from posta.users import throttle
from posta.users.models import LoginThrottle


class Command(BaseCommand):
    help = "Unlock sign-in for user names or client addresses locked by wrong passwords."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("keys", nargs="*", help="user names or addresses to unlock")
        parser.add_argument("--list", action="store_true", help="show what is locked now")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"]:
            for lock in throttle.locks():
                self.stdout.write(f"{lock.kind}\t{lock.key}\t{lock.failures}\t{lock.locked_until}")
        for key in options["keys"]:
            name = throttle.account_key(key)
            unlocked = throttle.do_unlock(kind=LoginThrottle.Kind.ACCOUNT, key=name)
            unlocked = throttle.do_unlock(kind=LoginThrottle.Kind.ADDRESS, key=key) or unlocked
            self.stdout.write(f"{key}: {'unlocked' if unlocked else 'was not locked'}")
