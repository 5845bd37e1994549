from django.apps import AppConfig


class MailConfig(AppConfig):
    name = "posta.mail"
    label = "mail"
