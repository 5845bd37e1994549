from django.urls import path

from posta.web import pop3_views

urlpatterns = [
    path("", pop3_views.pop3_sources, name="pop3_sources"),
    path("status/", pop3_views.pop3_status, name="pop3_status"),
    path("new/", pop3_views.pop3_new, name="pop3_new"),
    path("<id:source_id>/", pop3_views.pop3_edit, name="pop3_edit"),
    path("<id:source_id>/delete/", pop3_views.pop3_delete, name="pop3_delete"),
    path("<id:source_id>/fetch/", pop3_views.pop3_fetch, name="pop3_fetch"),
]
