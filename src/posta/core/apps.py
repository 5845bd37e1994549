from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "posta.core"
    label = "core"
