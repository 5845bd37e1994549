from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "posta.users"
    label = "users"
