"""Persistence: SQLAlchemy 2.x models, sessions and migrations."""

from models.base import Base
from models.entities import (
    ApiKey,
    Case,
    CaseEvent,
    Category,
    CategoryAttribute,
    CategoryAttributeValue,
    CategoryKeyword,
    CategorySettingsVersion,
    Office,
    OutboxMessage,
    OutboxReplay,
    Photo,
    Report,
    Reporter,
    RoutingOverride,
    RuleVersion,
    WebhookSubscription,
)

__all__ = [
    "ApiKey",
    "Base",
    "Case",
    "CaseEvent",
    "Category",
    "CategoryAttribute",
    "CategoryAttributeValue",
    "CategoryKeyword",
    "CategorySettingsVersion",
    "Office",
    "OutboxMessage",
    "OutboxReplay",
    "Photo",
    "Report",
    "Reporter",
    "RoutingOverride",
    "RuleVersion",
    "WebhookSubscription",
]
