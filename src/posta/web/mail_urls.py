"""The mail screen under /mail/ (issue 4)."""

from django.urls import URLPattern, URLResolver, path

from posta.web.mail import actions, content, layout, pages

urlpatterns: list[URLPattern | URLResolver] = [
    path("", pages.index, name="mail_index"),
    path("u/<str:role>/", pages.role_list, name="mail_role"),
    path("f/<id:folder_id>/", pages.folder_list, name="mail_folder"),
    path("s/<str:name>/", pages.special_list, name="mail_special"),
    path("search/", pages.search, name="mail_search"),
    path("poll/", pages.poll, name="mail_poll"),
    path("sidebar/", pages.sidebar, name="mail_sidebar"),
    path("m/<id:message_id>/", pages.message, name="mail_message"),
    path("m/<id:message_id>/body/", content.body, name="mail_body"),
    path("m/<id:message_id>/part/<str:part_id>/", content.part, name="mail_part"),
    path("m/<id:message_id>/zip/", content.zip_all, name="mail_zip"),
    path("m/<id:message_id>/eml/", content.eml, name="mail_eml"),
    path("m/<id:message_id>/print/", content.print_view, name="mail_print"),
    path("m/<id:message_id>/allow-images/", actions.allow_images, name="mail_allow_images"),
    path("t/<id:thread_id>/", pages.thread, name="mail_thread"),
    path("img/", content.image, {"user_id": 0, "message_id": 0}, name="mail_image_root"),
    path("img/<id:user_id>/<id:message_id>/", content.image, name="mail_image"),
    path("actions/", actions.act, name="mail_act"),
    path("actions/undo/", actions.undo_move, name="mail_undo"),
    path("layout/list-only/", layout.list_only, name="mail_list_only"),
    path("f/<id:folder_id>/empty/", actions.empty_folder, name="mail_empty"),
    path("accounts/<id:account_id>/sync/", actions.sync_now, name="mail_sync_now"),
]
