"""Writing mail under /compose/ (issue 5): the editor, undo, Scheduled and Outbox."""

from django.urls import URLPattern, URLResolver, path

from posta.web import compose_views as views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.compose_new, name="compose_new"),
    path("reply/<id:message_id>/", views.compose_reply, name="compose_reply"),
    path("forward/<id:message_id>/", views.compose_forward, name="compose_forward"),
    path("draft/<id:message_id>/", views.compose_draft, name="compose_draft"),
    path("again/<id:message_id>/", views.compose_again, name="compose_again"),
    # The first POST of a page whose draft is not stored yet (GET never writes).
    path("start/", views.compose_start, name="compose_start"),
    path("start/autosave/", views.autosave_start, name="compose_start_autosave"),
    path("start/attachments/", views.attach_start, name="compose_start_attach"),
    path("addresses/", views.addresses, name="compose_addresses"),
    path("scheduled/", views.scheduled, name="compose_scheduled"),
    path("outbox/", views.outbox_list, name="compose_outbox"),
    path("<id:outgoing_id>/", views.compose_edit, name="compose_edit"),
    path("<id:outgoing_id>/autosave/", views.autosave, name="compose_autosave"),
    path("<id:outgoing_id>/attachments/", views.attach, name="compose_attach"),
    path(
        "<id:outgoing_id>/attachments/<id:attachment_id>/delete/",
        views.detach,
        name="compose_detach",
    ),
    path("<id:outgoing_id>/sending/", views.sending_page, name="compose_sending"),
    path("<id:outgoing_id>/undo/", views.undo, name="compose_undo"),
    path("<id:outgoing_id>/do/<str:action>/", views.act, name="compose_act"),
]
