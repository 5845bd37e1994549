from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "posta.web"
    label = "web"

    def ready(self) -> None:
        from django.urls import register_converter

        from posta.web.params import IdConverter

        # `<id:...>` in the URL confs: ids within the database's integer range.
        register_converter(IdConverter, "id")
