"""Persistence: SQLAlchemy 2.x models, sessions and migrations."""

from models.base import Base
from models.entities import (
    ApiKey,
    Case,
    CaseEvent,
    Category,
    Office,
    OutboxMessage,
    Photo,
    Report,
    Reporter,
    RoutingOverride,
    RuleVersion,
)

__all__ = [
    "ApiKey",
    "Base",
    "Case",
    "CaseEvent",
    "Category",
    "Office",
    "OutboxMessage",
    "Photo",
    "Report",
    "Reporter",
    "RoutingOverride",
    "RuleVersion",
]
