from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "posta.delivery"
    label = "delivery"
