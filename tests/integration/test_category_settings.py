"""Each category's questions (Open311 service attributes) and keywords are data: admins change
them through the API, every change is a settings version, and Open311 follows on the next
request."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models.category_settings import current_settings
from models.entities import CategorySettingsVersion, Report
from models.seed import category_settings_defaults, load_category_settings
from models.session import unit_of_work
from tests.factories import make_key
from tests.helpers import (
    OPEN311,
    from_xml,
    loosely,
    open311_errors,
    open311_get_both,
    open311_post,
)

SETTINGS = "/api/v1/admin/categories"

NEW_WATERLOGGING = [
    {
        "code": "depth_cm",
        "datatype": "number",
        "required": True,
        "description_zh": "积水有多深（厘米）",
        "description_en": "How deep, in centimetres",
        "minimum": 0,
        "maximum": 1000,
    },
    {
        "code": "cause",
        "datatype": "singlevaluelist",
        "required": True,
        "description_zh": "积水原因",
        "description_en": "Cause",
        "values": [
            {"key": "rain", "name_zh": "暴雨", "name_en": "Heavy rain"},
            {"key": "pipe", "name_zh": "水管破裂", "name_en": "Burst pipe"},
        ],
    },
]


@pytest.fixture
def admin(sessions: sessionmaker[Session]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key(sessions, role='admin')}"}


def versions_count(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(CategorySettingsVersion)) or 0


def test_the_seeded_settings_are_the_defaults(client: FlaskClient, admin) -> None:
    answer = client.get(f"{SETTINGS}/manhole_cover/settings", headers=admin)
    assert answer.status_code == 200
    settings = answer.get_json()
    assert settings["code"] == "manhole_cover" and isinstance(settings["version"], int)
    defaults = category_settings_defaults()["manhole_cover"]
    assert settings["attributes"] == defaults["attributes"]
    assert settings["keywords"] == defaults["keywords"]


def test_admin_change_shows_in_the_open311_definition_and_checks_requests(
    client: FlaskClient, admin, reporter_key: str, db: Session
) -> None:
    flood = {"service_code": "waterlogging", "attribute[cover_state]": None}
    # Before: at most 300 cm, and `passable` is a question.
    errors = open311_errors(
        open311_post(client, reporter_key, **flood, **{"attribute[depth_cm]": "900"}), 400
    )
    assert any("attribute[depth_cm]" in e["description"] for e in errors)

    response = client.put(
        f"{SETTINGS}/waterlogging/attributes",
        json={"attributes": NEW_WATERLOGGING, "note": "ask for the cause"},
        headers=admin,
    )
    assert response.status_code == 200, response.get_json()
    changed = response.get_json()
    assert [a["code"] for a in changed["attributes"]] == ["depth_cm", "cause"]
    assert changed["attributes"][0]["maximum"] == 1000
    assert changed["keywords"][0] == {"word": "积水", "lang": "zh"}

    definition, root = open311_get_both(
        client, "services/waterlogging", headers={"Accept-Language": "en"}
    )
    assert loosely(definition) == from_xml(root)
    depth, cause = definition["attributes"]
    assert depth["description"] == "How deep, in centimetres" and depth["order"] == 1
    # no datatype_description given: the range says what is allowed
    assert depth["datatype_description"] == "a number from 0 to 1000"
    assert cause["code"] == "cause" and cause["required"] is True and cause["order"] == 2
    assert cause["values"] == [
        {"key": "rain", "name": "Heavy rain"},
        {"key": "pipe", "name": "Burst pipe"},
    ]
    assert root.find("attributes/attribute[2]/values/value[2]/name").text == "Burst pipe"
    chinese, _ = open311_get_both(client, "services/waterlogging")
    assert chinese["attributes"][1]["values"][0]["name"] == "暴雨"

    accepted = open311_post(
        client,
        reporter_key,
        **flood,
        **{"attribute[depth_cm]": "900", "attribute[cause]": "pipe"},
    )
    assert accepted.status_code == 201, accepted.get_data(as_text=True)
    request_id = accepted.get_json()[0]["service_request_id"]
    (one,) = client.get(f"{OPEN311}/requests/{request_id}.json?extensions=true").get_json()
    assert one["attributes"] == [
        {"code": "depth_cm", "value": 900.0},
        {"code": "cause", "value": "pipe"},
    ]

    for answers, named in [
        ({"attribute[depth_cm]": "20"}, "attribute[cause]"),
        ({"attribute[depth_cm]": "20", "attribute[cause]": "snow"}, "attribute[cause]"),
        ({"attribute[depth_cm]": "1001", "attribute[cause]": "rain"}, "attribute[depth_cm]"),
    ]:
        errors = open311_errors(open311_post(client, reporter_key, **flood, **answers), 400)
        assert any(named in e["description"] for e in errors), (answers, errors)
    # a question no longer asked (passable) is kept as extra data, not checked
    no_longer = {
        "attribute[depth_cm]": "20",
        "attribute[cause]": "rain",
        "attribute[passable]": "no",
    }
    kept = open311_post(client, reporter_key, **flood, **no_longer)
    assert kept.status_code == 201, kept.get_data(as_text=True)
    report = db.get(Report, int(kept.get_json()[0]["service_request_id"]))
    assert report.attributes == {"depth_cm": 20.0, "cause": "rain"}
    assert report.extra_attributes == {"passable": "no"}

    services, _ = open311_get_both(client, "services")
    assert next(s for s in services if s["service_code"] == "waterlogging")["metadata"] is True


def test_a_category_can_stop_asking(
    client: FlaskClient, admin, reporter_key: str, db: Session
) -> None:
    response = client.put(
        f"{SETTINGS}/manhole_cover/attributes", json={"attributes": []}, headers=admin
    )
    assert response.status_code == 200 and response.get_json()["attributes"] == []
    definition, _ = open311_get_both(client, "services/manhole_cover")
    assert definition["attributes"] == []
    services, _ = open311_get_both(client, "services")
    assert services[0]["service_code"] == "manhole_cover" and services[0]["metadata"] is False
    # cover_state was required; now it is no question at all, and an answer is extra data
    assert open311_post(client, reporter_key, **{"attribute[cover_state]": None}).status_code == 201
    answered = open311_post(client, reporter_key)
    assert answered.status_code == 201
    report = db.get(Report, int(answered.get_json()[0]["service_request_id"]))
    assert report.attributes == {} and report.extra_attributes == {"cover_state": "missing"}


def test_changes_are_versions_listed_newest_first(client: FlaskClient, admin) -> None:
    before = client.get(f"{SETTINGS}/waterlogging/settings", headers=admin).get_json()
    attributes = client.put(
        f"{SETTINGS}/waterlogging/attributes",
        json={"attributes": NEW_WATERLOGGING, "note": "ask for the cause"},
        headers=admin,
    ).get_json()
    keywords = client.put(
        f"{SETTINGS}/waterlogging/keywords",
        json={"keywords": [{"word": "积水"}, {"word": "puddle", "lang": "en"}]},
        headers=admin,
    ).get_json()
    # (ids, not counts: a PostgreSQL sequence never gives back a rolled-back test's numbers)
    assert before["version"] < attributes["version"] < keywords["version"]
    assert client.get(f"{SETTINGS}/waterlogging/settings", headers=admin).get_json() == keywords

    listed = client.get(f"{SETTINGS}/versions", headers=admin).get_json()
    newest, middle, oldest = listed[:3]
    assert [newest["version"], middle["version"], oldest["version"]] == [
        keywords["version"],
        attributes["version"],
        before["version"],
    ]
    assert middle["category"] == "waterlogging" and middle["note"] == "ask for the cause"
    assert middle["actor"].startswith("admin-key:") and "settings" not in middle

    old = client.get(f"{SETTINGS}/versions/{before['version']}", headers=admin).get_json()
    assert old["settings"]["waterlogging"]["attributes"] == before["attributes"]
    one = client.get(f"{SETTINGS}/versions/{attributes['version']}", headers=admin).get_json()
    snapshot = one["settings"]["waterlogging"]
    assert snapshot["attributes"] == attributes["attributes"]
    assert snapshot["keywords"] == before["keywords"]
    # every category is in the snapshot, not only the one changed
    assert one["settings"]["manhole_cover"]["attributes"][0]["code"] == "cover_state"
    assert client.get(f"{SETTINGS}/versions/999999", headers=admin).status_code == 404


def test_keywords_change_shows_in_services(client: FlaskClient, admin) -> None:
    response = client.put(
        f"{SETTINGS}/waterlogging/keywords",
        json={
            "keywords": [
                {"word": " 水浸街 ", "lang": "zh-Hant"},
                {"word": "puddle", "lang": None},
                {"word": "flooding", "lang": "en"},
            ],
            "note": "Cantonese word riders use",
        },
        headers=admin,
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["keywords"] == [
        {"word": "水浸街", "lang": "zh-Hant"},
        {"word": "puddle", "lang": None},
        {"word": "flooding", "lang": "en"},
    ]
    services, root = open311_get_both(client, "services")
    flood = next(s for s in services if s["service_code"] == "waterlogging")
    assert flood["keywords"] == "水浸街,puddle,flooding"
    assert loosely(services) == from_xml(root)


def test_seed_keeps_what_admins_changed(client: FlaskClient, admin, sessions) -> None:
    client.put(
        f"{SETTINGS}/waterlogging/attributes", json={"attributes": NEW_WATERLOGGING}, headers=admin
    )
    with unit_of_work(sessions) as session:
        assert load_category_settings(session) == 0
        codes = [a["code"] for a in current_settings(session)["waterlogging"]["attributes"]]
    assert codes == ["depth_cm", "cause"]


GOOD_DEPTH = NEW_WATERLOGGING[0]
STATE = {"code": "state", "datatype": "singlevaluelist", "description_zh": "情况"}


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        (
            "waterlogging/attributes",
            {"attributes": [GOOD_DEPTH, {**STATE, "description_en": "State"}]},
            422,
            "attributes.1.values",
        ),
        (
            "waterlogging/attributes",
            {"attributes": [GOOD_DEPTH, {**GOOD_DEPTH, "datatype": "string", "maximum": None}]},
            422,
            "attributes.1.code",
        ),
        (
            "waterlogging/attributes",
            {"attributes": [{**GOOD_DEPTH, "minimum": 50, "maximum": 10}]},
            422,
            "attributes.0.maximum",
        ),
        (
            "waterlogging/attributes",
            {"attributes": [{**GOOD_DEPTH, "datatype": "colour"}]},
            422,
            "attributes.0.datatype",
        ),
        (
            "waterlogging/attributes",
            {"attributes": [{**STATE, "description_en": "State", "required": "sometimes"}]},
            422,
            "attributes.0.required",
        ),
        (
            "waterlogging/attributes",
            {"attributes": [{**GOOD_DEPTH, "description_en": ""}]},
            422,
            "attributes.0.description_en",
        ),
        (
            "waterlogging/attributes",
            {"attributes": [STATE]},
            422,
            "attributes.0.description_en",
        ),
        (
            "waterlogging/attributes",
            {"attributes": [{**GOOD_DEPTH, "code": "Depth CM"}]},
            422,
            "attributes.0.code",
        ),
        (
            "waterlogging/attributes",
            {"attributes": [{**GOOD_DEPTH, "colour": "blue"}]},
            422,
            "attributes.0.colour",
        ),
        (
            "waterlogging/attributes",
            {
                "attributes": [
                    {
                        **STATE,
                        "description_en": "State",
                        "values": [{"key": "a", "name_zh": "甲"}],
                    }
                ]
            },
            422,
            "attributes.0.values.0.name_en",
        ),
        (
            "waterlogging/attributes",
            {
                "attributes": [
                    {
                        **STATE,
                        "description_en": "State",
                        "values": [
                            {"key": "a", "name_zh": "甲", "name_en": "A"},
                            {"key": "a", "name_zh": "乙", "name_en": "B"},
                        ],
                    }
                ]
            },
            422,
            "attributes.0.values.1.key",
        ),
        (
            "waterlogging/attributes",
            {
                "attributes": [
                    {**GOOD_DEPTH, "values": [{"key": "a", "name_zh": "甲", "name_en": "A"}]}
                ]
            },
            422,
            "attributes.0.values",
        ),
        ("waterlogging/attributes", {"attributes": "depth_cm"}, 422, "attributes"),
        ("waterlogging/attributes", {}, 422, "attributes"),
        ("waterlogging/attributes", {"attributes": [], "note": "x" * 1001}, 422, "note"),
        ("waterlogging/attributes", ["depth_cm"], 400, "_body"),
        ("no_such/attributes", {"attributes": [GOOD_DEPTH]}, 404, "code"),
        ("waterlogging/keywords", {"keywords": [{"word": "rain, flood"}]}, 422, "keywords.0.word"),
        (
            "waterlogging/keywords",
            {"keywords": [{"word": "flood"}, {"word": "Flood"}]},
            422,
            "keywords.1.word",
        ),
        (
            "waterlogging/keywords",
            {"keywords": [{"word": "积水", "lang": "chinese"}]},
            422,
            "keywords.0.lang",
        ),
        ("waterlogging/keywords", {"keywords": [{"word": ""}]}, 422, "keywords.0.word"),
        ("waterlogging/keywords", {"keywords": [{"word": "a\x00b"}]}, 422, "keywords.0.word"),
        ("waterlogging/keywords", {"keywords": ["积水"]}, 422, "keywords.0._schema"),
        ("waterlogging/keywords", {"words": []}, 422, "words"),
        ("no_such/keywords", {"keywords": []}, 404, "code"),
    ],
)
def test_bad_changes_are_refused_naming_the_field_and_change_nothing(
    client: FlaskClient,
    admin,
    db: Session,
    path: str,
    body: Any,
    status: int,
    field: str,
) -> None:
    before = client.get(f"{SETTINGS}/waterlogging/settings", headers=admin).get_json()
    versions = versions_count(db)
    response = client.put(f"{SETTINGS}/{path}", json=body, headers=admin)
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    assert field in error["fields"], error
    assert client.get(f"{SETTINGS}/waterlogging/settings", headers=admin).get_json() == before
    assert versions_count(db) == versions


def test_unknown_category_settings_is_404_naming_code(client: FlaskClient, admin) -> None:
    response = client.get(f"{SETTINGS}/no_such/settings", headers=admin)
    assert response.status_code == 404
    assert "no_such" in response.get_json()["error"]["fields"]["code"][0]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "waterlogging/settings", None),
        ("put", "waterlogging/attributes", {"attributes": []}),
        ("put", "waterlogging/keywords", {"keywords": []}),
        ("get", "versions", None),
        ("get", "versions/1", None),
    ],
)
def test_only_admins(
    client: FlaskClient,
    sessions: sessionmaker[Session],
    db: Session,
    method: str,
    path: str,
    body: Any,
) -> None:
    send = getattr(client, method)
    versions = versions_count(db)
    assert send(f"{SETTINGS}/{path}", json=body).status_code == 401
    for role, office in [("reporter", None), ("office", "PD-SZ")]:
        key = make_key(sessions, role=role, office_code=office)
        response = send(f"{SETTINGS}/{path}", json=body, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 403, (role, response.get_json())
    assert versions_count(db) == versions
