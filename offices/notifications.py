"""Notifications administration under /api/v1/admin: the webhook subscriptions, and the outbox
with its dead letters. Admin keys only."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, request
from flask.typing import ResponseReturnValue

from models.base import utcnow
from models.entities import OutboxMessage, WebhookSubscription
from offices.schemas import OutboxMessageOut, OutboxQuery, WebhookOut, WebhooksIn
from routing.webhooks import allowed_hosts
from services import notifications
from web.auth import authenticate
from web.db import read_session, unit_of_work
from web.errors import json_object_body
from web.openapi import ERROR, error, operation

bp = Blueprint("admin_notifications", __name__, url_prefix="/api/v1/admin")

NOT_ADMIN = error("Not an admin key.")

WEBHOOK_EXAMPLE = {
    "webhooks": [
        {
            "url": "http://127.0.0.1:9/cityrelay",
            "secret": "change-me-to-a-long-random-secret",
            "topics": ["case.*"],
            "recipients": ["office:PD-HG-02", "reporter:*"],
            "description": "PD-HG-02's work-order system",
        }
    ]
}


def _webhook_view(subscription: WebhookSubscription) -> dict[str, Any]:
    return WebhookOut().dump(subscription)


def _message_view(message: OutboxMessage) -> dict[str, Any]:
    return OutboxMessageOut().dump(message)


@bp.get("/webhooks")
@operation(
    summary="The webhook subscriptions (without their secrets)",
    responses={200: WebhookOut(many=True), 401: ERROR, 403: NOT_ADMIN},
    security="bearer",
    tags=["admin"],
)
def list_webhooks() -> ResponseReturnValue:
    authenticate("admin")
    return [_webhook_view(s) for s in notifications.webhooks(read_session())]


@bp.put("/webhooks")
@operation(
    summary="Replace the webhook subscriptions",
    description=(
        "Every webhook there is to be, in one list: an entry with an `id` (from GET) keeps and "
        "changes that webhook (left out, its `secret` stays), one without adds a webhook (a "
        "`secret` is needed), and a webhook not listed is removed. Notifications of a wanted "
        "topic and recipient are POSTed to `url` as JSON signed with HMAC-SHA256 (see the "
        "README's Notifications section). Answers the webhooks as they are now."
    ),
    body=WebhooksIn,
    body_example=WEBHOOK_EXAMPLE,
    responses={
        200: WebhookOut(many=True),
        400: ERROR,
        401: ERROR,
        403: NOT_ADMIN,
        422: error("Invalid fields, named like `webhooks.0.url`; nothing is changed."),
    },
    security="bearer",
    tags=["admin"],
)
def put_webhooks() -> ResponseReturnValue:
    caller = authenticate("admin")
    data = WebhooksIn().load(json_object_body())
    specs = [
        notifications.WebhookSpec(
            id=item["id"],
            url=item["url"],
            secret=item["secret"],
            topics=item["topics"],
            recipients=item["recipients"],
            active=item["active"],
            description=item["description"],
        )
        for item in data["webhooks"]
    ]
    hosts = allowed_hosts(current_app.config["WEBHOOK_HOSTS"])
    with unit_of_work() as session:
        saved = notifications.replace_webhooks(session, specs, f"admin-key:{caller.key_id}", hosts)
        view = [_webhook_view(s) for s in saved]
    return view


@bp.get("/outbox")
@operation(
    summary="Notifications in the outbox, newest first; `status=dead` lists the dead letters",
    description=(
        "Each with its attempts, the last error the endpoints gave, the webhooks that got it "
        "and its replays. Page back with `before` (the smallest id seen)."
    ),
    query=OutboxQuery,
    responses={
        200: OutboxMessageOut(many=True),
        401: ERROR,
        403: NOT_ADMIN,
        422: error("Invalid query parameters, named."),
    },
    security="bearer",
    tags=["admin"],
)
def list_outbox() -> ResponseReturnValue:
    authenticate("admin")
    query = OutboxQuery().load(request.args.to_dict())
    rows = notifications.outbox_messages(
        read_session(), query["status"], query["limit"], query["before"]
    )
    return [_message_view(row) for row in rows]


@bp.post("/outbox/<id:message_id>/replay")
@operation(
    summary="Replay a dead notification: pending again, attempts reset, due now",
    description=(
        "The replay is recorded (who, when, the attempts and the last error it had). Webhooks "
        "that already answered 2xx for it do not get it again."
    ),
    responses={
        200: OutboxMessageOut,
        401: ERROR,
        403: NOT_ADMIN,
        404: error("No such notification."),
        409: error("The notification is not dead; the message names its status."),
    },
    security="bearer",
    tags=["admin"],
)
def replay(message_id: int) -> ResponseReturnValue:
    caller = authenticate("admin")
    with unit_of_work() as session:
        row = notifications.replay(session, message_id, f"admin-key:{caller.key_id}", utcnow())
        view = _message_view(row)
    return view
