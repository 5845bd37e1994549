from django.urls import include, path

urlpatterns = [
    path("", include("posta.web.urls")),
]
