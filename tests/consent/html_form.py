"""A browser without JavaScript, for the public pages: read a page's forms and labels, tick boxes
and submit exactly what a browser would (checked boxes and radios, every hidden/text/time input)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Input:
    type: str
    name: str
    value: str
    checked: bool
    id: str | None


@dataclass
class Form:
    method: str
    action: str | None
    inputs: list[Input] = field(default_factory=list)
    buttons: list[str] = field(default_factory=list)

    def _named(self, name: str) -> list[Input]:
        found = [i for i in self.inputs if i.name == name]
        assert found, f"no input named {name!r} in the form"
        return found

    def tick(self, name: str, on: bool = True) -> None:
        (box,) = [i for i in self._named(name) if i.type == "checkbox"]
        box.checked = on

    def choose(self, name: str, value: str) -> None:
        radios = self._named(name)
        assert value in [r.value for r in radios], f"{name} offers no {value!r}"
        for radio in radios:
            radio.checked = radio.value == value

    def fill(self, name: str, value: str) -> None:
        (box,) = self._named(name)
        box.value = value

    def data(self) -> list[tuple[str, str]]:
        """The form's fields as a browser submits them."""
        out = []
        for i in self.inputs:
            if i.type in ("checkbox", "radio"):
                if i.checked:
                    out.append((i.name, i.value))
            elif i.name:
                out.append((i.name, i.value))
        return out

    def is_checked(self, name: str, value: str | None = None) -> bool:
        return any(i.checked for i in self._named(name) if value is None or i.value == value)


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.labels: dict[str, str] = {}
        self._label_for: str | None = None
        self._label_text: list[str] = []
        self._in_button = False
        self._button_text: list[str] = []
        self._form: Form | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = Form(a.get("method", "get").lower(), a.get("action"))
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None:
            kind = a.get("type", "text").lower()
            # A box without a value attribute submits "on"; a text field without one submits "".
            value = a.get("value", "on" if kind in ("checkbox", "radio") else "")
            self._form.inputs.append(Input(kind, a.get("name", ""), value, "checked" in a, a.get("id")))
        elif tag == "label":
            self._label_for, self._label_text = a.get("for"), []
        elif tag == "button":
            self._in_button, self._button_text = True, []

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "label" and self._label_for:
            self.labels[self._label_for] = " ".join("".join(self._label_text).split())
            self._label_for = None
        elif tag == "button" and self._in_button:
            self._in_button = False
            if self._form is not None:
                self._form.buttons.append(" ".join("".join(self._button_text).split()))

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._label_for is not None:
            self._label_text.append(data)
        if self._in_button:
            self._button_text.append(data)


@dataclass
class Page:
    forms: list[Form]
    labels: dict[str, str]
    text: str

    @property
    def form(self) -> Form:
        posts = [f for f in self.forms if f.method == "post"]
        assert len(posts) == 1, f"expected one POST form, found {len(posts)}"
        return posts[0]

    def label_of(self, name: str) -> str:
        """The visible label of the checkbox named `name`."""
        (box,) = [i for i in self.form.inputs if i.name == name and i.type == "checkbox"]
        assert box.id and box.id in self.labels, f"checkbox {name!r} has no label"
        return self.labels[box.id]

    def says(self, phrase: str) -> bool:
        return phrase.lower() in self.text.lower()


def parse(html: str) -> Page:
    parser = _Parser()
    parser.feed(html)
    text = " ".join(" ".join(parser.text).split())
    return Page(parser.forms, parser.labels, text)


def names(page: Page, prefix: str) -> list[str]:
    """Checkbox names starting with `prefix`, in page order."""
    return [i.name for i in page.form.inputs if i.type == "checkbox" and i.name.startswith(prefix)]


def title(html: str) -> str:
    found = re.search(r"<h1>(.*?)</h1>", html, re.S)
    return " ".join(found.group(1).split()) if found else ""
