from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "posta.sync"
    label = "sync"
