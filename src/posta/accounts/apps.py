from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "posta.accounts"
    label = "accounts"
