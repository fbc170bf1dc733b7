"""The envelope tests' event: a valid one, with fields changed or removed (``...``)."""

from __future__ import annotations

from typing import Any

PAGE_VIEW = "iglu:com.tributary.shop/page_view/jsonschema/1-0-0"
UUID = "5b4c8a8e-2b7e-4c7e-9d1a-2f0b0f3c4a11"


def event(timestamp: str = "2026-06-01T13:59:00+02:00", **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": UUID,
        "event_type": PAGE_VIEW,
        "event_timestamp": timestamp,
        "source": "web-shop",
        "payload": {"page_url": "https://shop.example.com/"},
        "context": {"user_id": "u-1", "session_id": "s-1"},
    }
    for key, value in changes.items():
        if value is ...:
            base.pop(key)
        else:
            base[key] = value
    return base
