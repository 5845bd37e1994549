import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "posta.settings")
django_application = get_asgi_application()

from posta.web.uploads import BodyCapApplication  # noqa: E402 - needs the apps loaded

# Request bodies are capped as they arrive, before Django receives them whole.
application = BodyCapApplication(django_application)
