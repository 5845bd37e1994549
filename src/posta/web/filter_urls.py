"""The Filters tab under /settings/filters/ (issue 12)."""

from django.urls import URLPattern, URLResolver, path

from posta.web import filter_views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", filter_views.filter_list, name="filters"),
    path("new/", filter_views.filter_new, name="filter_new"),
    path("order/", filter_views.filter_order, name="filter_order"),
    path("<id:rule_id>/", filter_views.filter_edit, name="filter_edit"),
    path("<id:rule_id>/delete/", filter_views.filter_delete, name="filter_delete"),
    path("<id:rule_id>/toggle/", filter_views.filter_toggle, name="filter_toggle"),
    path("<id:rule_id>/move/", filter_views.filter_move, name="filter_move"),
    path("server/<id:account_id>/", filter_views.filter_server, name="filter_server"),
    path("scan/", filter_views.scan_start, name="filter_scan"),
    path("scan/<id:job_id>/", filter_views.scan_status, name="filter_scan_status"),
    path("scan/<id:job_id>/cancel/", filter_views.scan_cancel, name="filter_scan_cancel"),
]
