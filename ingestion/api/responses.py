"""JSON responses serialised with orjson."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Response


class JSONBytes(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
