"""Django settings for Posta, all from the environment (see README "Configuration")."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext
from django.templatetags.static import static
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _
from django_prose_editor.config import html_tags

from posta.core import config

# Lets ModelForm[Account] and friends be written with their type parameters.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = config.data_dir()


def _flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


SECRET_KEY = config.secret_key()
DEBUG = _flag("POSTA_DEBUG")
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("POSTA_ALLOWED_HOSTS", "*").split(",")]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("POSTA_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_prose_editor",
    "huey.contrib.djhuey",
    "posta.core",
    "posta.users",
    "posta.accounts",
    "posta.crm",
    "posta.mail",
    "posta.remote",
    "posta.sync",
    "posta.delivery",
    "posta.rules",
    "posta.shares",
    "posta.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "posta.web.security.ContentSecurityPolicyMiddleware",
    "posta.web.security.SecureCookiesMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "posta.web.middleware.UserLanguageMiddleware",
    "posta.web.middleware.SetupMiddleware",
    "posta.web.middleware.PostaErrorMiddleware",
]

ROOT_URLCONF = "posta.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
ASGI_APPLICATION = "posta.asgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("POSTA_DATABASE_URL") or f"sqlite:///{DATA_DIR / 'posta.sqlite3'}",
        conn_max_age=int(os.environ.get("POSTA_DB_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web, worker and sync processes read while one writes; IMMEDIATE
    # transactions take the write lock up front so two writers queue, not deadlock.
    # For the first mirror of a mailbox (thousands of rows a transaction): a 64 MB
    # page cache, a ceiling filled only as a connection reads, because those rows go
    # into indexes in random key order (identity, Message-ID) and with the default
    # 2 MB nearly every insert misses; and a checkpoint every 64 MB of log instead
    # of every 4 MB, so the pages a batch shares with the next are written back once.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536;"
            " PRAGMA wal_autocheckpoint=16384; PRAGMA journal_size_limit=67108864;"
        ),
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # A file, not memory, for the test database: the tests run real worker and sync
    # processes that must see the same database.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-posta.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "users.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("it", _("Italiano"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = os.environ.get("POSTA_TIME_ZONE", "Europe/Rome")
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"

# Posta's own editor extensions (posta.web.forms.SIGNATURE_EXTENSIONS): Enter makes a
# line break in signatures, and a menu inserts merge fields. They allow no markup
# beyond HardBreak's <br>.
DJANGO_PROSE_EDITOR_EXTENSIONS = [
    {
        "js": [
            lazy(static, str)("posta/signature_lines.js"),
            lazy(static, str)("posta/merge_fields.js"),
        ],
        "extensions": {"SignatureLines": html_tags([]), "MergeFields": html_tags([])},
    }
]
STORAGES: dict[str, dict[str, Any]] = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(DATA_DIR / "blobs")},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Blobs are mail: the owner's alone. Django's default (0644) would chmod every file
# it saves past the umask `posta` sets.
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "SAMEORIGIN"

# HTTPS (README "Behind HTTPS"). Proxies in front of Posta, as addresses or CIDR
# ranges: their X-Forwarded-For names the client (login throttling) and their
# X-Forwarded-Proto: https marks a request as HTTPS. Nobody else is believed.
POSTA_TRUSTED_PROXIES = [
    p.strip() for p in os.environ.get("POSTA_TRUSTED_PROXIES", "").split(",") if p.strip()
]
if POSTA_TRUSTED_PROXIES:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Over HTTPS cookies are always Secure (posta.web.security.SecureCookiesMiddleware);
# this makes them Secure on every response, for sites that are HTTPS only.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _flag("POSTA_SECURE_COOKIES")
# RFC 6797: sent on HTTPS responses only (SecurityMiddleware), so plain HTTP on a
# developer's machine is untouched; 0 turns it off.
SECURE_HSTS_SECONDS = int(os.environ.get("POSTA_HSTS_SECONDS", "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = _flag("POSTA_HSTS_INCLUDE_SUBDOMAINS")
SECURE_SSL_REDIRECT = _flag("POSTA_SSL_REDIRECT")

# Login throttling (posta.users.throttle): after this many wrong passwords for one
# user name, or from one address, sign-in is refused for POSTA_LOGIN_LOCKOUT_SECONDS,
# doubling with each further failure up to the maximum; failures are forgotten
# after a quiet window.
POSTA_LOGIN_ACCOUNT_FAILURES = int(os.environ.get("POSTA_LOGIN_ACCOUNT_FAILURES", "5"))
POSTA_LOGIN_ADDRESS_FAILURES = int(os.environ.get("POSTA_LOGIN_ADDRESS_FAILURES", "20"))
POSTA_LOGIN_LOCKOUT_SECONDS = int(os.environ.get("POSTA_LOGIN_LOCKOUT_SECONDS", "60"))
POSTA_LOGIN_LOCKOUT_MAX_SECONDS = int(os.environ.get("POSTA_LOGIN_LOCKOUT_MAX_SECONDS", "3600"))
POSTA_LOGIN_FAILURE_WINDOW_SECONDS = int(
    os.environ.get("POSTA_LOGIN_FAILURE_WINDOW_SECONDS", "3600")
)

# Secrets at rest (posta.core.crypto): newest key first.
POSTA_ENCRYPTION_KEYS = config.encryption_keys()
# Hosts (names or CIDR ranges) users may connect to although they are private or
# loopback: on-premise mail servers. Administrators add more in the settings page.
POSTA_ALLOWED_MAIL_HOSTS = [
    h.strip() for h in os.environ.get("POSTA_ALLOWED_MAIL_HOSTS", "").split(",") if h.strip()
]
# The remote-image proxy's own rule (posta.mail.remote_images): any sender picks its
# URLs, so the mail-host allowances above never apply to it. Public addresses on
# these ports only, plus the hosts listed here (same syntax), e.g. an intranet
# image server; none by default.
POSTA_IMAGE_PROXY_ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("POSTA_IMAGE_PROXY_ALLOWED_HOSTS", "").split(",")
    if h.strip()
]
POSTA_IMAGE_PROXY_PORTS = [
    int(p) for p in os.environ.get("POSTA_IMAGE_PROXY_PORTS", "80,443").split(",") if p.strip()
]
# Seconds a connection test or sync connection waits for a server.
POSTA_NETWORK_TIMEOUT = float(os.environ.get("POSTA_NETWORK_TIMEOUT", "15"))
# How long a worker's claim on a remote action lasts without its heartbeat.
POSTA_ACTION_LEASE_SECONDS = float(os.environ.get("POSTA_ACTION_LEASE_SECONDS", "30"))
POSTA_AUTOREPLY_LEASE_SECONDS = float(os.environ.get("POSTA_AUTOREPLY_LEASE_SECONDS", "300"))
# Extra connections per account that wait with IDLE on folders other than INBOX
# (posta.sync.service); 0 turns them off. Servers limit connections per user
# (Dovecot: 10 by default), and opening a message may need one more.
POSTA_IDLE_FOLDERS = max(0, int(os.environ.get("POSTA_IDLE_FOLDERS", "2")))
# Longest pause, in seconds, before a sync connection of a healthy account lost to a
# server outage reconnects (posta.sync.reconnect); other failures back off to 15 min.
POSTA_SYNC_RECONNECT_CAP = float(os.environ.get("POSTA_SYNC_RECONNECT_CAP", "60"))
# CA bundle to trust in addition to the system's (tests, on-premise private CAs).
POSTA_EXTRA_CA_FILE = os.environ.get("POSTA_EXTRA_CA_FILE", "")
# How long a worker's hold on a POP3 source lasts without its heartbeat, and how
# many messages one POP3 session takes before it ends (QUIT) and lets other jobs run.
POSTA_POP3_LEASE_SECONDS = float(os.environ.get("POSTA_POP3_LEASE_SECONDS", "60"))
POSTA_POP3_BATCH = int(os.environ.get("POSTA_POP3_BATCH", "500"))

REDIS_URL = os.environ.get("POSTA_REDIS_URL", "")
HUEY: dict[str, Any] = {
    "name": "posta",
    "immediate": False,
    "consumer": {"workers": int(os.environ.get("POSTA_WORKERS", "2")), "worker_type": "thread"},
}
if REDIS_URL:
    HUEY.update({"huey_class": "huey.RedisHuey", "url": REDIS_URL})
else:
    HUEY.update({"huey_class": "huey.SqliteHuey", "filename": str(DATA_DIR / "queue.sqlite3")})

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("POSTA_LOG_LEVEL", "INFO")},
    # `posta worker` gives Huey's logger a handler of its own; keep lines single.
    "loggers": {"huey": {"handlers": ["console"], "propagate": False}},
}

# Request bodies (posta.web.uploads): uploads stream to temporary files and stop at
# the administrator's attachment limit; a body larger than that limit plus the
# form margin below is refused with 413, in the user's language, before the CSRF
# check (process_view, after every middleware's request phase) reads it.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440  # form fields, in memory (Django's default)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
FILE_UPLOAD_HANDLERS = ["posta.web.uploads.CappedUploadHandler"]
MIDDLEWARE.insert(
    MIDDLEWARE.index("posta.web.middleware.UserLanguageMiddleware") + 1,
    "posta.web.uploads.BodyCapMiddleware",
)
