"""URLs of the CRM pages (posta.web.crm_views), under /crm/."""

from django.urls import URLPattern, URLResolver, path

from posta.web import crm_link_existing
from posta.web import crm_views as views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.crm_home, name="crm_home"),
    path("search/", views.record_search, name="crm_search"),
    path("settings/", views.crm_admin, name="crm_admin"),
    path("import-mail/", views.import_mail, name="crm_import_mail"),
    path("preferences/", views.crm_prefs, name="crm_prefs"),
    path("panel/<id:message_id>/", views.panel, name="crm_panel"),
    path("panel/<id:message_id>/link/", views.panel_link, name="crm_panel_link"),
    path("panel/<id:message_id>/unlink/", views.panel_unlink, name="crm_panel_unlink"),
    path("panel/<id:message_id>/create/", views.panel_create, name="crm_panel_create"),
    path("import/<id:import_id>/", views.import_job, name="crm_import_job"),
    path("import/<id:import_id>/step/", views.import_step, name="crm_import_step"),
    path("<str:record_kind>/", views.record_list, name="crm_list"),
    path("<str:record_kind>/export/", views.record_export, name="crm_export"),
    path("<str:record_kind>/import/", views.record_import, name="crm_import"),
    path("<str:record_kind>/new/", views.record_edit, name="crm_new"),
    path("<str:record_kind>/<id:record_id>/", views.record_page, name="crm_record"),
    path("<str:record_kind>/<id:record_id>/edit/", views.record_edit, name="crm_edit"),
    path("<str:record_kind>/<id:record_id>/delete/", views.record_delete, name="crm_delete"),
    path("<str:record_kind>/<id:record_id>/merge/", views.record_merge, name="crm_merge"),
    path(
        "<str:record_kind>/<id:record_id>/link-existing/",
        crm_link_existing.link_existing,
        name="crm_link_existing",
    ),
]
