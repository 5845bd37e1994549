"""The Out-of-office tab under /settings/autoreply/ (issue 13)."""

from django.urls import URLPattern, URLResolver, path

from posta.web import autoreply_views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", autoreply_views.autoreply, name="autoreply"),
    path("off/", autoreply_views.autoreply_off, name="autoreply_off"),
]
