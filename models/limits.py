"""Every size limit of what people send, defined once: the schemas, the Open311 door, the
services and the column sizes all read them from here."""

from __future__ import annotations

MAX_TEXT_CHARS = 4000
MAX_ADDRESS_CHARS = 500
MAX_ADDRESS_ID_CHARS = 100
MAX_DISPLAY_NAME_CHARS = 100
MAX_PLATFORM_CHARS = 100
MAX_USERNAME_CHARS = 60
MAX_NOTE_CHARS = 1000
# The most hours an office may ask to add to a case's due time at once ("extend").
MAX_EXTENSION_HOURS = 24 * 30
MAX_IDEMPOTENCY_KEY_CHARS = 200
MAX_CATEGORY_CODE_CHARS = 40
MAX_OFFICE_CODE_CHARS = 40
MAX_MEDIA_URLS = 5
MAX_MEDIA_URL_CHARS = 2000
MAX_CONTACT_VALUE_CHARS = 200
# Open311 lists at most this many requests per page (and by default one page of this size).
MAX_PAGE_SIZE = 1000

OCCUPATIONS = ("rider", "courier", "driver", "citizen")

# Working-hour calendars: their names (in URLs), time zone names, and how much one may hold.
MAX_CALENDAR_NAME_CHARS = 40
MAX_CALENDAR_TIMEZONE_CHARS = 64
MAX_CALENDAR_PERIODS_PER_DAY = 8
# Exceptional days of one calendar: some 40 a year in mainland China, for decades.
MAX_CALENDAR_DAYS = 2000
MAX_CALENDAR_DAY_NAME_CHARS = 100

# What admins may set as a category's questions (Open311 service attributes) and keywords.
MAX_ATTRIBUTES_PER_CATEGORY = 20
MAX_VALUES_PER_ATTRIBUTE = 50
MAX_KEYWORDS_PER_CATEGORY = 50
MAX_ATTRIBUTE_CODE_CHARS = 40
MAX_ATTRIBUTE_DESCRIPTION_CHARS = 200
MAX_DATATYPE_DESCRIPTION_CHARS = 200
MAX_VALUE_KEY_CHARS = 40
MAX_VALUE_NAME_CHARS = 100
MAX_KEYWORD_CHARS = 50
MAX_LANGUAGE_TAG_CHARS = 10

# How close (metres) and how soon (hours) a "me too" report may be to join an open case.
MERGE_RADIUS_RANGE_M = (1.0, 1000.0)
MERGE_WINDOW_RANGE_HOURS = (0.25, 24.0 * 30)

# Webhook subscriptions (routing.webhooks checks the same numbers).
MAX_WEBHOOKS = 50
MAX_WEBHOOK_URL_CHARS = 2000
MAX_WEBHOOK_SECRET_CHARS = 256
MIN_WEBHOOK_SECRET_CHARS = 16
MAX_WEBHOOK_DESCRIPTION_CHARS = 200
MAX_WEBHOOK_PATTERNS = 50
# The admin's list of outbox rows: a page at most this long.
MAX_OUTBOX_PAGE = 500
# An office's queue (GET /api/v1/offices/<code>/queue): a page at most this long.
MAX_QUEUE_PAGE = 200
