from django.http import HttpRequest, HttpResponse


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse("Posta")


def setup(request: HttpRequest) -> HttpResponse:
    return HttpResponse("setup")
