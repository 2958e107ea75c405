"""The OpenAPI 3.1 description of /api/v1, served at /api/v1/openapi.json.

A test checks that every route the app serves under /api/v1 is described here.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask.typing import ResponseReturnValue

bp = Blueprint("openapi", __name__)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _path_int(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


REPORT_FIELDS: dict[str, Any] = {
    "text": {"type": "string", "maxLength": 4000, "description": "What is wrong, in any language."},
    "lat": {"type": "number", "minimum": -90, "maximum": 90, "description": "WGS-84 latitude."},
    "lon": {"type": "number", "minimum": -180, "maximum": 180, "description": "WGS-84 longitude."},
    "category": {"type": ["string", "null"], "description": "A category code from /categories."},
    "address": {"type": "string", "maxLength": 500},
    "lang": {
        "type": ["string", "null"],
        "description": "zh, zh-Hans, zh-CN, zh-Hant, zh-TW, zh-HK, en…; detected when absent.",
    },
}

OFFICE_REF = {
    "type": ["object", "null"],
    "properties": {
        "code": {"type": "string"},
        "name": {"type": "string"},
        "name_en": {"type": "string"},
    },
}

CODE_PARAMETER = {"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}

# A category's questions and keywords as admins set them (GET answers the same shapes).
CATEGORY_ATTRIBUTE: dict[str, Any] = {
    "type": "object",
    "required": ["code", "datatype", "description_zh", "description_en"],
    "additionalProperties": False,
    "properties": {
        "code": {"type": "string", "maxLength": 40, "pattern": "^[a-z][a-z0-9_]*$"},
        "datatype": {
            "type": "string",
            "enum": ["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"],
        },
        "required": {"type": "boolean", "default": False},
        "description_zh": {"type": "string", "minLength": 1, "maxLength": 200},
        "description_en": {"type": "string", "minLength": 1, "maxLength": 200},
        "datatype_description": {"type": "string", "maxLength": 200},
        "minimum": {"type": ["number", "null"], "description": "number attributes only"},
        "maximum": {"type": ["number", "null"], "description": "number attributes only"},
        "values": {
            "type": "array",
            "maxItems": 50,
            "description": "At least one for the list datatypes, none for the others.",
            "items": {
                "type": "object",
                "required": ["key", "name_zh", "name_en"],
                "additionalProperties": False,
                "properties": {
                    "key": {"type": "string", "maxLength": 40},
                    "name_zh": {"type": "string", "minLength": 1, "maxLength": 100},
                    "name_en": {"type": "string", "minLength": 1, "maxLength": 100},
                },
            },
        },
    },
}
CATEGORY_KEYWORD: dict[str, Any] = {
    "type": "object",
    "required": ["word"],
    "additionalProperties": False,
    "properties": {
        "word": {"type": "string", "minLength": 1, "maxLength": 50},
        "lang": {"type": ["string", "null"], "maxLength": 10},
    },
}
CATEGORY_SETTINGS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code": {"type": "string"},
        "version": {"type": ["integer", "null"]},
        "attributes": {"type": "array", "items": CATEGORY_ATTRIBUTE},
        "keywords": {"type": "array", "items": CATEGORY_KEYWORD},
    },
}
CATEGORY_SETTINGS_VERSION: dict[str, Any] = {
    "type": "object",
    "properties": {
        "version": {"type": "integer"},
        "created_at": {"type": "string", "format": "date-time"},
        "actor": {"type": "string"},
        "note": {"type": "string"},
        "category": {"type": ["string", "null"]},
        "settings": {
            "type": "object",
            "description": "Every category's attributes and keywords (one version only).",
        },
    },
}
ADMIN_ERRORS = {"401": _error("Missing or unknown key."), "403": _error("Not an admin key.")}


def _replace_category(what: str, items: dict[str, Any]) -> dict[str, Any]:
    return {
        "put": {
            "summary": f"Replace a category's {what} (records a new settings version)",
            "security": [{"bearer": []}],
            "parameters": [CODE_PARAMETER],
            "requestBody": _json_body(
                {
                    "type": "object",
                    "required": [what],
                    "additionalProperties": False,
                    "properties": {
                        what: {"type": "array", "items": items},
                        "note": {"type": "string", "maxLength": 1000},
                    },
                }
            ),
            "responses": {
                "200": _json(CATEGORY_SETTINGS, "The category's settings now."),
                "400": _error("Not a JSON object."),
                **ADMIN_ERRORS,
                "404": _error("No such category."),
                "422": _error("Invalid fields; nothing is changed."),
            },
        }
    }


CATEGORY_SETTINGS_PATHS: dict[str, Any] = {
    "/api/v1/admin/categories/{code}/settings": {
        "get": {
            "summary": "A category's questions (Open311 attributes) and keywords",
            "security": [{"bearer": []}],
            "parameters": [CODE_PARAMETER],
            "responses": {
                "200": _json(CATEGORY_SETTINGS, "Settings and the version in force."),
                **ADMIN_ERRORS,
                "404": _error("No such category."),
            },
        }
    },
    "/api/v1/admin/categories/{code}/attributes": _replace_category(
        "attributes", CATEGORY_ATTRIBUTE
    ),
    "/api/v1/admin/categories/{code}/keywords": _replace_category("keywords", CATEGORY_KEYWORD),
    "/api/v1/admin/categories/versions": {
        "get": {
            "summary": "Every version of the category settings, newest first",
            "security": [{"bearer": []}],
            "responses": {
                "200": _json({"type": "array", "items": CATEGORY_SETTINGS_VERSION}, "Versions."),
                **ADMIN_ERRORS,
            },
        }
    },
    "/api/v1/admin/categories/versions/{version}": {
        "get": {
            "summary": "One version of the category settings, every category as it was",
            "security": [{"bearer": []}],
            "parameters": [_path_int("version")],
            "responses": {
                "200": _json(CATEGORY_SETTINGS_VERSION, "The version."),
                **ADMIN_ERRORS,
                "404": _error("No such version."),
            },
        }
    },
}

SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "CityRelay API",
        "version": "1",
        "description": "File city problems on the move; follow them from received to routed.",
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": {"type": "string"},
                            "message": {"type": "string"},
                            "fields": {
                                "type": "object",
                                "additionalProperties": {
                                    "type": "array",
                                    "items": {"type": "string"},
                                },
                            },
                        },
                    }
                },
            },
            "ReportIn": {
                "type": "object",
                "description": "Give lat and lon, or an address or landmark.",
                "additionalProperties": False,
                "properties": REPORT_FIELDS,
            },
            "ReportAccepted": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "status": {"type": "string"},
                    "status_url": {"type": "string", "format": "uri"},
                },
            },
            "Event": {
                "type": "object",
                "properties": {
                    "at": {"type": "string", "format": "date-time"},
                    "action": {
                        "type": "string",
                        "enum": [
                            "received",
                            "classified",
                            "routed",
                            "triaged",
                            "rejected",
                            "merged",
                            "split",
                        ],
                    },
                    "from_status": {"type": ["string", "null"]},
                    "to_status": {"type": "string"},
                    "actor": {"type": "string"},
                    "office": OFFICE_REF,
                    "note": {"type": "string"},
                    "detail": {"type": "object"},
                },
            },
            "Report": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "status": {"type": "string", "enum": ["received", "routed", "triage"]},
                    "channel": {"type": "string"},
                    "text": {"type": "string"},
                    "lang": {"type": "string"},
                    "lat": {"type": ["number", "null"]},
                    "lon": {"type": ["number", "null"]},
                    "address": {"type": "string"},
                    "received_at": {"type": "string", "format": "date-time"},
                    "photos": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "url": {"type": "string"},
                                "content_type": {"type": "string"},
                                "size_bytes": {"type": "integer"},
                            },
                        },
                    },
                    "case_id": {"type": ["integer", "null"]},
                    "category": {"type": ["string", "null"]},
                    "category_name": {"type": ["object", "null"]},
                    "confidence": {"type": ["number", "null"]},
                    "classified_by": {
                        "type": ["string", "null"],
                        "enum": ["reporter", "classifier", "none", None],
                    },
                    "alternatives": {"type": "array", "items": {"type": "object"}},
                    "classifier_model": {
                        "type": ["string", "null"],
                        "description": "Model id of the classifier in force when the case "
                        "opened (`cityrelay train-classifier` prints it).",
                    },
                    "office": OFFICE_REF,
                    "routing": {"type": "object"},
                    "due_at": {"type": ["string", "null"], "format": "date-time"},
                    "reports_in_case": {
                        "type": "integer",
                        "description": "Reports joined ('me too').",
                    },
                    "reporters_in_case": {"type": "integer"},
                    "events": {"type": "array", "items": _ref("Event")},
                    "status_url": {"type": "string"},
                },
            },
            "Office": {
                "type": "object",
                "properties": {
                    "code": {"type": "string"},
                    "name": {"type": "string"},
                    "name_en": {"type": "string"},
                    "kind": {
                        "type": "string",
                        "enum": ["district", "street", "community", "department"],
                    },
                    "parent": {"type": ["string", "null"]},
                    "jurisdiction": {
                        "type": ["object", "null"],
                        "description": "GeoJSON Polygon or MultiPolygon.",
                    },
                    "categories": {"type": "array", "items": {"type": "string"}},
                    "active": {"type": "boolean"},
                },
            },
            "RuleSet": {
                "type": "object",
                "properties": {
                    "version": {"type": ["integer", "null"]},
                    "rules": _ref("Rules"),
                },
            },
            "Rules": {
                "type": "object",
                "properties": {
                    "handles": {
                        "type": "object",
                        "additionalProperties": {"type": "array", "items": {"type": "string"}},
                        "description": "Office code to what it handles in its jurisdiction.",
                    },
                    "overrides": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "area": {"type": "string"},
                                "category": {"type": "string"},
                                "office": {"type": "string"},
                            },
                        },
                    },
                },
            },
            "RuleVersion": {
                "type": "object",
                "properties": {
                    "version": {"type": "integer"},
                    "created_at": {"type": "string", "format": "date-time"},
                    "actor": {"type": "string"},
                    "note": {"type": "string"},
                    "rules": _ref("Rules"),
                },
            },
            "Category": {
                "type": "object",
                "properties": {
                    "code": {"type": "string"},
                    "name_zh": {"type": "string"},
                    "name_en": {"type": "string"},
                    "group": {"type": "string"},
                    "standard_codes": {"type": "array", "items": {"type": "string"}},
                    "time_limit": {"type": ["string", "null"]},
                    "time_limit_source": {"type": "string"},
                    "urgent": {"type": "boolean"},
                    "handled_by": {"type": "string"},
                    "merge_radius_m": {"type": "number"},
                    "merge_window_hours": {"type": "number"},
                },
            },
        },
    },
    "paths": {
        "/api/v1/reports": {
            "post": {
                "summary": "File a report",
                "security": [{"bearer": []}],
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "schema": {"type": "string", "maxLength": 200},
                        "description": "A retry with the same key returns the first report.",
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": _ref("ReportIn")},
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    **REPORT_FIELDS,
                                    "photos": {
                                        "type": "array",
                                        "maxItems": 5,
                                        "items": {"type": "string", "format": "binary"},
                                    },
                                },
                            }
                        },
                    },
                },
                "responses": {
                    "202": _json(_ref("ReportAccepted"), "Committed; routing follows."),
                    "400": _error("Malformed body or Idempotency-Key."),
                    "401": _error("Missing or unknown key."),
                    "403": _error("The key is not a reporter's."),
                    "413": _error("A photo is too large."),
                    "415": _error("Unsupported content type."),
                    "422": _error(
                        "Invalid fields, or an Idempotency-Key reused with another body."
                    ),
                },
            }
        },
        "/api/v1/reporters": {
            "post": {
                "summary": "Register as a reporter and get a reporter key (shown once)",
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "display_name": {"type": "string", "maxLength": 100},
                                    "occupation": {
                                        "type": "string",
                                        "enum": ["rider", "courier", "driver", "citizen"],
                                    },
                                    "platform": {"type": "string", "maxLength": 100},
                                },
                            }
                        }
                    }
                },
                "responses": {
                    "201": _json(
                        {
                            "type": "object",
                            "properties": {
                                "id": {"type": "integer"},
                                "display_name": {"type": "string"},
                                "occupation": {"type": "string"},
                                "platform": {"type": "string"},
                                "key": {"type": "string"},
                            },
                        },
                        "Registered; keep the key.",
                    ),
                    "400": _error("Not a JSON object."),
                    "422": _error("Invalid fields."),
                },
            }
        },
        "/api/v1/reports/{report_id}": {
            "get": {
                "summary": "A report and the progress of its case",
                "parameters": [
                    {
                        "name": "report_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer"},
                    }
                ],
                "responses": {
                    "200": _json(_ref("Report"), "The report."),
                    "404": _error("No such report."),
                },
            }
        },
        "/api/v1/cases/{case_id}/reject": {
            "post": {
                "summary": "An office says a case is not its own; it is routed again without it",
                "security": [{"bearer": []}],
                "parameters": [_path_int("case_id")],
                "requestBody": _json_body(
                    {
                        "type": "object",
                        "required": ["reason"],
                        "additionalProperties": False,
                        "properties": {
                            "reason": {"type": "string", "minLength": 2, "maxLength": 1000}
                        },
                    }
                ),
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "case_id": {"type": "integer"},
                                "status": {"type": "string", "enum": ["routed", "triage"]},
                                "office": {"type": ["string", "null"]},
                                "routing": {"type": "object"},
                            },
                        },
                        "Routed to another office (never one that rejected it), or to triage.",
                    ),
                    "401": _error("Missing or unknown key."),
                    "403": _error("Not an office key."),
                    "404": _error("No such case."),
                    "409": _error("The case is not in this office's queue."),
                    "422": _error("Invalid fields."),
                },
            }
        },
        "/api/v1/cases/{case_id}/split": {
            "post": {
                "summary": "Take a wrongly merged report out of its case; it is processed alone",
                "security": [{"bearer": []}],
                "parameters": [_path_int("case_id")],
                "requestBody": _json_body(
                    {
                        "type": "object",
                        "required": ["report_id"],
                        "additionalProperties": False,
                        "properties": {"report_id": {"type": "integer"}},
                    }
                ),
                "responses": {
                    "202": _json(
                        {
                            "type": "object",
                            "properties": {
                                "case_id": {"type": "integer"},
                                "report_id": {"type": "integer"},
                                "status_url": {"type": "string"},
                            },
                        },
                        "Split; the report is being classified and routed on its own.",
                    ),
                    "401": _error("Missing or unknown key."),
                    "403": _error("Not an office key."),
                    "404": _error("No such case."),
                    "409": _error("Not this office's case, or its only report."),
                    "422": _error("The report is not part of this case."),
                },
            }
        },
        **CATEGORY_SETTINGS_PATHS,
        "/api/v1/admin/categories/{code}/merge": {
            "put": {
                "summary": "Set how close and how soon a report joins an open case of a category",
                "security": [{"bearer": []}],
                "parameters": [
                    {"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "requestBody": _json_body(
                    {
                        "type": "object",
                        "required": ["radius_m", "window_hours"],
                        "additionalProperties": False,
                        "properties": {
                            "radius_m": {"type": "number", "minimum": 1, "maximum": 1000},
                            "window_hours": {"type": "number", "minimum": 0.25, "maximum": 720},
                        },
                    }
                ),
                "responses": {
                    "200": _json({"type": "object"}, "The settings now in force."),
                    "404": _error("No such category."),
                    "422": _error("Invalid fields."),
                },
            }
        },
        "/api/v1/admin/rules": {
            "get": {
                "summary": "The routing rules in force and their version",
                "security": [{"bearer": []}],
                "responses": {
                    "200": _json(_ref("RuleSet"), "Rules in force."),
                    "403": _error("Not an admin key."),
                },
            }
        },
        "/api/v1/admin/rules/versions": {
            "get": {
                "summary": "Every version of the rules, newest first",
                "security": [{"bearer": []}],
                "responses": {
                    "200": _json({"type": "array", "items": _ref("RuleVersion")}, "Versions.")
                },
            }
        },
        "/api/v1/admin/rules/versions/{version}": {
            "get": {
                "summary": "One version of the rules, with the rules as they were",
                "security": [{"bearer": []}],
                "parameters": [_path_int("version")],
                "responses": {
                    "200": _json(_ref("RuleVersion"), "The version."),
                    "404": _error("No such version."),
                },
            }
        },
        "/api/v1/admin/offices/{code}/categories": {
            "put": {
                "summary": "Replace the categories an office handles (a new version)",
                "security": [{"bearer": []}],
                "parameters": [
                    {"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "requestBody": _json_body(
                    {
                        "type": "object",
                        "required": ["categories"],
                        "properties": {
                            "categories": {"type": "array", "items": {"type": "string"}},
                            "note": {"type": "string"},
                        },
                    }
                ),
                "responses": {
                    "200": _json(_ref("RuleVersion"), "The new version."),
                    "404": _error("No such office."),
                    "422": _error("Unknown categories."),
                },
            }
        },
        "/api/v1/admin/overrides": {
            "put": {
                "summary": "Inside an area, send a category to an office (office null removes it)",
                "security": [{"bearer": []}],
                "requestBody": _json_body(
                    {
                        "type": "object",
                        "required": ["area", "category", "office"],
                        "properties": {
                            "area": {
                                "type": "string",
                                "description": "Code of an office with a jurisdiction.",
                            },
                            "category": {"type": "string"},
                            "office": {"type": ["string", "null"]},
                            "note": {"type": "string"},
                        },
                    }
                ),
                "responses": {
                    "200": _json(_ref("RuleVersion"), "The new version."),
                    "422": _error("Invalid fields."),
                },
            }
        },
        "/api/v1/offices": {
            "get": {
                "summary": "Offices and their jurisdictions",
                "responses": {
                    "200": _json({"type": "array", "items": _ref("Office")}, "All offices.")
                },
            }
        },
        "/api/v1/categories": {
            "get": {
                "summary": "The category taxonomy (the public service codes)",
                "responses": {
                    "200": _json({"type": "array", "items": _ref("Category")}, "All categories.")
                },
            }
        },
        "/api/v1/health": {
            "get": {
                "summary": "Liveness: the database answers",
                "responses": {"200": _json({"type": "object"}, "Healthy.")},
            }
        },
        "/api/v1/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1.")},
            }
        },
    },
}


@bp.get("/api/v1/openapi.json")
def openapi() -> ResponseReturnValue:
    return SPEC
