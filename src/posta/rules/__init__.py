"""Rules that act on mail without the user: filters, out-of-office replies, POP3
import and (later) the mail scanner (DESIGN §8). Models and services here are
database-only and used by the web pages; the modules that open connections
(ManageSieve, POP3, SMTP for replies, IMAP through posta.remote) are reached only
from this package's tasks, never from a view.
"""
