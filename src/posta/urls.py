from django.urls import include, path

urlpatterns = [
    path("", include("posta.web.urls")),
]

urlpatterns += [path("i18n/", include("django.conf.urls.i18n"))]

# Requests Django refuses while reading them (posta.web.views.bad_request).
handler400 = "posta.web.views.bad_request"
