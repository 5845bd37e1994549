"""The compose page as a browser sees it: the fields it would post, and where."""

from __future__ import annotations

from html.parser import HTMLParser

from django.test import Client


class EditorPage(HTMLParser):
    """The fields of the compose form as a browser would post them, and where the
    page posts them."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.attach_fields: dict[str, str] = {}
        self.urls: dict[str, str] = {}
        self._form = ""
        self._textarea = ""
        self._select = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id") == "compose-form":
            self._form = "compose"
            self.urls["edit"] = a["action"]
            self.urls["autosave"] = a["data-autosave-url"]
        elif tag == "form" and a.get("id") == "attach-form":
            self._form = "attach"
            self.urls["attach"] = a["action"]
        target = self.fields if self._form == "compose" else self.attach_fields
        if not self._form:
            return
        if tag == "input" and a.get("name"):
            if a.get("type") == "checkbox":
                if "checked" in a:
                    target[a["name"]] = "on"
            elif a.get("type") not in ("file", "submit"):
                target[a["name"]] = a.get("value", "")
        elif tag == "textarea" and a.get("name"):
            self._textarea = a["name"]
            target[self._textarea] = ""
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
        elif tag == "option" and self._select and "selected" in a:
            target[self._select] = a.get("value", "")

    def handle_data(self, data: str) -> None:
        if self._textarea:
            target = self.fields if self._form == "compose" else self.attach_fields
            target[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = ""
        elif tag == "select":
            self._select = ""
        elif tag == "form":
            self._form = ""


def open_editor(client: Client, url: str) -> EditorPage:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    page = EditorPage()
    page.feed(response.content.decode())
    return page
