from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "posta.web"
    label = "web"
