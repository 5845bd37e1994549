from django.urls import path

from posta.web import account_views, oauth_views

urlpatterns = [
    path("manage/signin/", oauth_views.provider_list, name="admin_signin"),
    path("manage/signin/<str:kind>/", oauth_views.provider_edit, name="admin_signin_edit"),
    path(
        "settings/accounts/signin/callback/", account_views.signin_callback, name="oauth_callback"
    ),
    path(
        "settings/accounts/<id:account_id>/signin/",
        oauth_views.signin_again,
        name="account_signin_again",
    ),
]
