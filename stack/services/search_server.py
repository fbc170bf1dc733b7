"""What the two search servers share: health, provisioning, and being the engine in use."""

from __future__ import annotations

from typing import ClassVar

import httpx

from resources.settings import SearchEngine
from stack.provision import provision_search
from stack.services.base import Service


class SearchServer(Service):
    """A search engine's single local node (OpenSearch or Elasticsearch)."""

    engine: ClassVar[SearchEngine]

    def in_use(self) -> bool:
        return self.settings.search.engine is self.engine

    def healthy(self) -> bool:
        # /_cluster/health, not GET /: the minimal Elasticsearch distribution lacks the root.
        try:
            resp = httpx.get(f"{self.url}/_cluster/health", timeout=2)
        except httpx.HTTPError:
            return False
        return resp.status_code == 200 and resp.json().get("status") in ("green", "yellow")

    def provision(self) -> list[str]:
        """The aliases on this server, whichever engine the platform uses."""
        created = provision_search(self.settings, self.engine)
        return [f"index {i} created for its alias" for i in created] or ["aliases up to date"]
