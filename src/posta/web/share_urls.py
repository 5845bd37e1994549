"""Shared conversations under /shares/ (issue 16)."""

from django.urls import URLPattern, URLResolver, path

from posta.web import share_views as views

urlpatterns: list[URLPattern | URLResolver] = [
    path("new/<id:message_id>/", views.share_new, name="share_new"),
    path("settings/", views.share_settings, name="share_settings"),
    path("<id:share_id>/", views.share_open, name="share_open"),
    path("<id:share_id>/people/", views.share_people, name="share_people"),
    path("<id:share_id>/manage/", views.share_manage, name="share_manage"),
    path("<id:share_id>/comments/", views.comment_post, name="share_comment"),
    path(
        "<id:share_id>/comments/<id:comment_id>/edit/",
        views.comment_edit,
        name="share_comment_edit",
    ),
    path(
        "<id:share_id>/comments/<id:comment_id>/delete/",
        views.comment_delete,
        name="share_comment_delete",
    ),
    path("<id:share_id>/m/<id:message_id>/body/", views.share_body, name="share_body"),
    path(
        "<id:share_id>/m/<id:message_id>/part/<str:part_id>/",
        views.share_part,
        name="share_part",
    ),
    path("<id:share_id>/m/<id:message_id>/reply/", views.share_reply, name="share_reply"),
]
