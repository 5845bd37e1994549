"""Turning an account into connections: the one place that knows how.

`posta.remote.connect` opens an account's IMAP session (address guard, pinned
address, TLS, unsealed secret) and builds its SMTP settings with the same host
rule; `posta.remote.pool` keeps one session per account for a job that works on
several; `posta.remote.copies` finds and removes copies on the server;
`posta.remote.probe` is the account test of the account form, registered with
posta.accounts by RemoteConfig.ready(). Imported by sync and delivery (and the
rules and API to come), never by web, mail, accounts, users or core.
"""
