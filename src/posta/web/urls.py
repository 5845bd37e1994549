from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from posta.web import account_views, admin_views, login, views, wizard_views

urlpatterns = [
    # The rich-text editor's words (posta/locale djangojs, and the editor's own).
    path("jsi18n/", JavaScriptCatalog.as_view(packages=["django_prose_editor"]),
         name="javascript_catalog"),
    path("mail/", include("posta.web.mail_urls")),
    path("compose/", include("posta.web.compose_urls")),
    path("settings/filters/", include("posta.web.filter_urls")),
    path("crm/", include("posta.web.crm_urls")),
    path("shares/", include("posta.web.share_urls")),
    path("settings/autoreply/", include("posta.web.autoreply_urls")),
    path("", include("posta.web.oauth_urls")),
    path("", views.home, name="home"),
    path("setup/", views.setup, name="setup"),
    path("login/", login.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password/",
        auth_views.PasswordChangeView.as_view(
            template_name="web/password.html", success_url="/password/done/"
        ),
        name="password_change",
    ),
    path(
        "password/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="web/password_done.html"),
        name="password_change_done",
    ),
    path("settings/profile/", views.profile, name="profile"),
    path("settings/layout/", views.layout, name="layout"),
    path("settings/pop3/", include("posta.web.pop3_urls")),
    path("settings/accounts/", account_views.account_list, name="accounts"),
    path("settings/accounts/new/", account_views.account_new, name="account_new"),
    path("settings/accounts/find/", wizard_views.account_wizard, name="account_wizard"),
    path("settings/accounts/<id:account_id>/", account_views.account_edit, name="account_edit"),
    path(
        "settings/accounts/<id:account_id>/folders/",
        account_views.account_folders,
        name="account_folders",
    ),
    path(
        "settings/accounts/<id:account_id>/delete/",
        account_views.account_delete,
        name="account_delete",
    ),
    path(
        "settings/accounts/<id:account_id>/main/",
        account_views.account_make_main,
        name="account_make_main",
    ),
    path("manage/users/", admin_views.user_list, name="admin_users"),
    path("manage/users/new/", admin_views.user_new, name="admin_user_new"),
    path("manage/users/<id:user_id>/", admin_views.user_edit, name="admin_user_edit"),
    path("manage/users/unlock/", admin_views.login_unlock, name="admin_login_unlock"),
    path("manage/servers/", admin_views.server_list, name="admin_servers"),
    path("manage/servers/new/", admin_views.server_edit, name="admin_server_new"),
    path("manage/servers/<id:server_id>/", admin_views.server_edit, name="admin_server_edit"),
    path(
        "manage/servers/<id:server_id>/delete/",
        admin_views.server_delete,
        name="admin_server_delete",
    ),
    path("manage/company/", admin_views.company, name="admin_company"),
    path("manage/company/preview/", admin_views.signature_preview, name="admin_signature_preview"),
]
