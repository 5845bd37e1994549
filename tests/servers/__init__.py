"""Real mail servers and a real browser on 127.0.0.1, for integration and browser tests.

Import as ``from tests.servers.dovecot import DovecotServer`` (``tests/conftest.py`` puts
the repository root on ``sys.path``); the fixtures in ``tests/conftest.py`` wrap them.
"""
