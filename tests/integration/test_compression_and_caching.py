"""What a page costs on a slow network, as the server answers: text compressed with gzip for a
client that takes it (and only then), with ``Vary: Accept-Encoding`` and an ETag of its own;
images, small bodies, streams and pages holding a CSRF token left as they are; every script
and style a page links carries its content hash and is kept a year (``immutable``), while an
unversioned or wrong version, and every page itself, is revalidated on each visit."""

from __future__ import annotations

import gzip
import hashlib
import re

import pytest
from flask import Flask, Response
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from tests.integration.test_dashboard_pages import signed_in
from web.assets import DIGEST_HEX_CHARS, IMMUTABLE
from web.compression import ETAG_SUFFIX, MIN_BYTES, compress

GZIP = {"Accept-Encoding": "gzip, deflate, br"}
YEAR = "max-age=31536000"
LINKED = re.compile(r'(?:src|href)="(/[^"]+\?v=[^"]+)"')
PAGES = ("/report", "/report?lang=en", "/public", "/console/login", "/docs")


def vary(response: TestResponse) -> set[str]:
    return {part.strip().lower() for part in response.headers.get("Vary", "").split(",") if part}


def linked_assets(client: FlaskClient, page: str) -> list[str]:
    html = client.get(page).get_data(as_text=True)
    return [url.replace("&amp;", "&") for url in LINKED.findall(html)]


def test_a_page_is_gzipped_for_a_client_that_takes_gzip_and_only_then(
    client: FlaskClient,
) -> None:
    plain = client.get("/report")
    packed = client.get("/report", headers=GZIP)
    assert plain.status_code == packed.status_code == 200
    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == "gzip"
    assert "accept-encoding" in vary(plain) and "accept-encoding" in vary(packed)
    assert gzip.decompress(packed.get_data()) == plain.get_data()
    assert int(packed.headers["Content-Length"]) == len(packed.get_data())
    assert len(packed.get_data()) < len(plain.get_data()) / 2


@pytest.mark.parametrize(
    "accept_encoding", ["identity", "gzip;q=0", "br", "deflate", "", "*;q=0, identity"]
)
def test_a_client_that_refuses_gzip_gets_the_body_as_it_is(
    client: FlaskClient, accept_encoding: str
) -> None:
    response = client.get("/report", headers={"Accept-Encoding": accept_encoding})
    assert response.status_code == 200
    assert "Content-Encoding" not in response.headers
    assert response.get_data().startswith(b"<!doctype html>")
    assert "accept-encoding" in vary(response)


def test_any_encoding_with_a_star_gets_gzip(client: FlaskClient) -> None:
    response = client.get("/report", headers={"Accept-Encoding": "*"})
    assert response.headers["Content-Encoding"] == "gzip"


def test_json_and_xml_are_compressed_too(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json", headers=GZIP)
    assert document.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(document.get_data()) == client.get("/api/v1/openapi.json").get_data()
    services = client.get("/open311/v2/services.xml", headers=GZIP)
    assert services.status_code == 200 and services.mimetype.endswith("xml")
    assert services.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(services.get_data()).startswith(b"<?xml")


def test_images_small_bodies_and_encoded_or_streamed_answers_are_left_alone(
    client: FlaskClient, app: Flask
) -> None:
    favicon_url = next(
        u for u in linked_assets(client, "/docs") if u.endswith(".png") or ".png?" in u
    )
    favicon = client.get(favicon_url, headers=GZIP)
    assert favicon.status_code == 200 and favicon.mimetype == "image/png"
    assert len(favicon.get_data()) >= MIN_BYTES  # big enough: its type is what keeps it as is
    assert "Content-Encoding" not in favicon.headers
    assert favicon.get_data().startswith(b"\x89PNG")
    assert "accept-encoding" not in vary(favicon)

    small = client.get("/healthz", headers=GZIP)
    assert small.status_code == 200 and len(small.get_data()) < MIN_BYTES
    assert "Content-Encoding" not in small.headers and small.json == {"status": "ok"}

    text = "x" * (MIN_BYTES * 4)
    with app.test_request_context("/anything", headers=GZIP):
        streamed = compress(Response(iter([text]), mimetype="text/plain"))
        assert streamed.is_streamed and "Content-Encoding" not in streamed.headers
        encoded = Response(text, mimetype="text/plain", headers={"Content-Encoding": "br"})
        assert compress(encoded).get_data(as_text=True) == text
        assert compress(encoded).headers["Content-Encoding"] == "br"
        made = compress(Response(text, mimetype="text/plain"))
        assert gzip.decompress(made.get_data()).decode() == text


def test_console_pages_holding_a_csrf_token_are_not_compressed_but_their_styles_are(
    client: FlaskClient,
) -> None:
    login = client.get("/console/login", headers=GZIP)
    assert login.status_code == 200 and 'name="csrf_token"' in login.get_data(as_text=True)
    assert "Content-Encoding" not in login.headers
    stylesheet = next(u for u in linked_assets(client, "/console/login") if ".css?" in u)
    assert client.get(stylesheet, headers=GZIP).headers["Content-Encoding"] == "gzip"


@pytest.mark.parametrize("page", PAGES)
def test_every_asset_a_page_links_carries_its_content_hash_and_is_kept_a_year(
    client: FlaskClient, page: str
) -> None:
    assets = linked_assets(client, page)
    assert assets, f"{page} links no versioned asset"
    for url in assets:
        version = re.search(r"[?&]v=([0-9a-f]+)", url)
        assert version and len(version.group(1)) == DIGEST_HEX_CHARS, url
        response = client.get(url)
        assert response.status_code == 200, url
        assert hashlib.sha256(response.get_data()).hexdigest()[:DIGEST_HEX_CHARS] == version[1]
        assert response.headers["Cache-Control"] == IMMUTABLE, url
        assert YEAR in IMMUTABLE and "immutable" in IMMUTABLE
        packed = client.get(url, headers=GZIP)
        assert packed.headers["Cache-Control"] == IMMUTABLE, url
        if packed.headers.get("Content-Encoding") == "gzip":
            assert gzip.decompress(packed.get_data()) == response.get_data(), url


@pytest.mark.parametrize("version", [None, "0", "0123456789abcdef", "not-a-hash"])
def test_an_unversioned_or_wrong_version_is_revalidated_not_kept_a_year(
    client: FlaskClient, version: str | None
) -> None:
    for url in linked_assets(client, "/report"):
        path = url.split("?")[0]
        asked = path if version is None else f"{path}?v={version}"
        response = client.get(asked)
        assert response.status_code == 200, asked
        assert response.headers["Cache-Control"] == "no-cache", asked
        assert "immutable" not in response.headers["Cache-Control"]


def test_a_missing_or_escaping_static_path_is_404(client: FlaskClient) -> None:
    assert client.get("/static/no-such-file.js").status_code == 404
    assert client.get("/static/../pages.py").status_code == 404
    assert client.get("/static/%2e%2e/pages.py").status_code == 404
    assert client.get("/dashboard/static/vendor").status_code == 404


@pytest.mark.parametrize(
    ("page", "rule"),
    [
        ("/report", "no-cache"),
        ("/report/1", "no-cache"),
        ("/docs", "no-cache"),
        ("/public", "no-store"),
        ("/console/login", "no-store"),
    ],
)
def test_pages_themselves_are_revalidated(client: FlaskClient, page: str, rule: str) -> None:
    for headers in ({}, GZIP):
        response = client.get(page, headers=headers)
        assert response.status_code == 200 and response.mimetype == "text/html"
        assert response.headers["Cache-Control"] == rule
        assert "max-age" not in response.headers["Cache-Control"]


def test_each_variant_has_its_own_etag_and_answers_304_to_it(client: FlaskClient) -> None:
    for url in linked_assets(client, "/report"):
        plain = client.get(url)
        packed = client.get(url, headers=GZIP)
        assert packed.headers["Content-Encoding"] == "gzip", url
        plain_tag, packed_tag = plain.headers["ETag"], packed.headers["ETag"]
        assert packed_tag != plain_tag and packed_tag == plain_tag[:-1] + ETAG_SUFFIX + '"'

        same_plain = client.get(url, headers={"If-None-Match": plain_tag})
        assert same_plain.status_code == 304 and same_plain.get_data() == b""
        assert same_plain.headers["ETag"] == plain_tag
        same_packed = client.get(url, headers={**GZIP, "If-None-Match": packed_tag})
        assert same_packed.status_code == 304 and same_packed.get_data() == b""
        assert same_packed.headers["ETag"] == packed_tag
        assert "Content-Encoding" not in same_packed.headers
        assert "accept-encoding" in vary(same_packed)
        assert same_packed.headers["Cache-Control"] == IMMUTABLE

        # A tag of the other variant, or of nothing, is no match: the whole body again.
        other = client.get(url, headers={"If-None-Match": packed_tag})
        assert other.status_code == 200 and other.get_data() == plain.get_data()
        stale = client.get(url, headers={**GZIP, "If-None-Match": '"0000"'})
        assert stale.status_code == 200 and stale.get_data() == packed.get_data()


def test_the_status_page_and_the_public_page_are_compressed(client: FlaskClient) -> None:
    for page in ("/report/1", "/public"):
        plain, packed = client.get(page), client.get(page, headers=GZIP)
        assert plain.status_code == packed.status_code == 200, page
        assert packed.headers["Content-Encoding"] == "gzip", page
        assert "accept-encoding" in vary(packed)
        assert gzip.decompress(packed.get_data()).startswith(b"<!doctype html>"), page


def test_assets_kept_a_year_never_carry_a_signed_in_users_cookie(
    app: Flask, sessions: sessionmaker[Session]
) -> None:
    # A shared cache keeps an immutable asset for everyone: a Set-Cookie on it would hand one
    # user's console session to the next, and Vary: Cookie would make it a copy per user.
    client = signed_in(app, sessions, "supervisor", "PD")
    page = client.get("/dashboard")
    assert page.status_code == 200 and "Set-Cookie" in page.headers
    assets = linked_assets(client, "/dashboard") + linked_assets(client, "/console/login")
    assert any(".css?" in url for url in assets) and any(".js?" in url for url in assets)
    for url in assets:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == IMMUTABLE, url
        assert "Set-Cookie" not in response.headers, url
        assert "Cookie" not in response.headers.get("Vary", ""), url
    assert client.get("/dashboard").status_code == 200  # still signed in
