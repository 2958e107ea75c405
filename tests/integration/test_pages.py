"""The reporter pages as the server sends them, before any script runs: the language the address
asks for (``?lang=``), every translated string filled, and the string tables the browser gets
agreeing with the ones the server renders from."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from flask import Flask
from flask.testing import FlaskClient

from intake.pages import page_strings, translate
from tests.live_server import UNFILLED_PLACEHOLDER

CHINESE = re.compile(r"[\u4e00-\u9fff]")
# The only words of the other language a page may hold: the switch to it, and the notice for
# browsers without JavaScript, which is in both.
BILINGUAL = ("切换到中文", "Switch to English", "本页面需要 JavaScript。", "English", "中文")


class SeenText(HTMLParser):
    """The text and the attributes people see or hear, as a browser without scripts shows."""

    SEEN_ATTRIBUTES = frozenset({"placeholder", "title", "alt", "aria-label"})

    def __init__(self) -> None:
        super().__init__()
        self.html_attributes: dict[str, str | None] = {}
        self.title = ""
        self.texts: list[str] = []
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "html":
            self.html_attributes = dict(attrs)
        self._open.append(tag)
        self.texts.extend(value for name, value in attrs if name in self.SEEN_ATTRIBUTES and value)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._open:
            del self._open[len(self._open) - 1 - self._open[::-1].index(tag) :]

    def handle_data(self, data: str) -> None:
        if self._open and self._open[-1] == "title":
            self.title += data
        elif data.strip() and not (self._open and self._open[-1] in {"script", "style"}):
            self.texts.append(data.strip())

    @classmethod
    def of(cls, html: str) -> SeenText:
        parser = cls()
        parser.feed(html)
        parser.close()
        return parser


def served(client: FlaskClient, url: str) -> SeenText:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "text/html"
    return SeenText.of(response.get_data(as_text=True))


def without_bilingual(texts: list[str]) -> str:
    joined = "\n".join(texts)
    for words in BILINGUAL:  # the longer first: "中文" is in "切换到中文"
        joined = joined.replace(words, "")
    return joined


@pytest.mark.parametrize(
    ("query", "html_lang", "requested"),
    [
        ("", "zh-Hans", None),
        ("?lang=en", "en", "en"),
        ("?lang=EN-gb", "en", "en"),
        ("?lang=zh", "zh-Hans", "zh"),
        ("?lang=zh-Hans", "zh-Hans", "zh"),
        # the pages have no traditional strings: a reader asking for them reads Chinese
        ("?lang=zh-TW", "zh-Hans", "zh"),
        ("?lang=zh-Hant", "zh-Hans", "zh"),
        ("?lang=fr", "zh-Hans", None),
        ("?lang=", "zh-Hans", None),
    ],
)
def test_the_form_is_rendered_in_the_language_its_address_asks_for(
    client: FlaskClient, query: str, html_lang: str, requested: str | None
) -> None:
    page = served(client, f"/report{query}")
    assert page.html_attributes.get("lang") == html_lang
    # what i18n.js keeps (and remembers) instead of the reader's last choice
    assert page.html_attributes.get("data-lang-requested") == requested
    text = without_bilingual(page.texts)
    if html_lang == "en":
        assert page.title == "Quick Report · city problems"
        assert "Tap the “Photo” button below, up to 5." in page.texts
        assert "Switch to English" not in page.texts and "切换到中文" in page.texts
        assert not CHINESE.search(text), text
    else:
        assert page.title == "随手拍 · 城市问题上报"
        assert "点下方“拍照”按钮，最多 5 张。" in page.texts
        assert "Switch to English" in page.texts
        assert "Submit" not in text and "提交" in text
    assert not UNFILLED_PLACEHOLDER.search("\n".join([page.title, *page.texts]))


@pytest.mark.parametrize(
    ("query", "html_lang", "title", "heading"),
    [
        ("", "zh-Hans", "上报进度", "处理记录"),
        ("?lang=en", "en", "Report status", "History"),
        ("?lang=zh-TW", "zh-Hans", "上报进度", "处理记录"),
    ],
)
def test_the_status_page_is_rendered_in_the_language_its_address_asks_for(
    client: FlaskClient, query: str, html_lang: str, title: str, heading: str
) -> None:
    page = served(client, f"/report/4217{query}")
    assert page.html_attributes.get("lang") == html_lang
    assert page.title == title
    assert heading in page.texts and "#4217" in page.texts
    if html_lang == "en":
        text = without_bilingual(page.texts)
        assert not CHINESE.search(text), text
    assert not UNFILLED_PLACEHOLDER.search("\n".join([page.title, *page.texts]))


def test_the_photo_hint_names_the_configured_limit(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "MAX_PHOTOS", 3)
    chinese = served(client, "/report")
    english = served(client, "/report?lang=en")
    assert "点下方“拍照”按钮，最多 3 张。" in chinese.texts
    assert "Tap the “Photo” button below, up to 3." in english.texts
    assert "0/3" in chinese.texts
    # and i18n.js fills the same value when the reader switches language
    html = client.get("/report").get_data(as_text=True)
    assert 'data-i18n-params="{&#34;max&#34;: 3}"' in html


def test_both_languages_have_every_string_with_the_same_parameters() -> None:
    tables = page_strings()
    assert set(tables) == {"zh", "en"}
    assert tables["zh"].keys() == tables["en"].keys()
    parameters = re.compile(r"\{(\w+)\}")
    for key, chinese in tables["zh"].items():
        english = tables["en"][key]
        assert chinese.strip() and english.strip(), key
        assert sorted(parameters.findall(chinese)) == sorted(parameters.findall(english)), key


def test_a_string_without_its_parameter_is_an_error_not_a_placeholder() -> None:
    assert translate("en", "photo.empty", max=4) == "Tap the “Photo” button below, up to 4."
    assert translate("zh", "photo.empty", max=4) == "点下方“拍照”按钮，最多 4 张。"
    with pytest.raises(KeyError, match="max"):
        translate("zh", "photo.empty")


def test_the_browser_gets_the_tables_the_server_renders_from(client: FlaskClient) -> None:
    html = client.get("/report").get_data(as_text=True)
    scripts = re.findall(r'<script src="([^"]+)" defer></script>', html)
    # the tables first, then i18n.js that reads them, then the page's own script
    assert [s.split("?")[0] for s in scripts] == [
        "/report/strings.js",
        "/static/i18n.js",
        "/static/dom.js",
        "/static/report.js",
    ]
    response = client.get(scripts[0])
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    body = response.get_data(as_text=True)
    prefix, suffix = "window.CityRelayStrings = ", ";\n"
    assert body.startswith(prefix) and body.endswith(suffix)
    assert json.loads(body[len(prefix) : -len(suffix)]) == page_strings()
    again = client.get(scripts[0], headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("page", ["/report", "/report/1", "/report?lang=en"])
def test_the_pages_carry_the_categories_the_api_lists(client: FlaskClient, page: str) -> None:
    html = client.get(page).get_data(as_text=True)
    block = re.search(
        r'<script type="application/json" id="categories-data">(.*?)</script>', html, re.S
    )
    assert block, "no categories in the page"
    in_page = json.loads(block.group(1))
    listed = client.get("/api/v1/categories").json
    assert len(in_page) == len(listed) > 10
    for shown, api in zip(in_page, listed, strict=True):
        assert shown == {key: api[key] for key in ("code", "name_zh", "name_en", "urgent")}


def test_without_the_database_the_page_still_loads_and_its_script_asks_the_api(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    import intake.pages

    def unreachable(session: object) -> list[object]:
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(intake.pages.queries, "categories", unreachable)
    response = client.get("/report")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'id="categories-data"' not in html and 'id="categories"' in html
