"""The stack's provisioning of the search store: aliases ahead of any document, clear errors."""

from __future__ import annotations

import uuid

import pytest

from contract.search import FAMILIES, alias_name
from resources.opensearch import make_opensearch_client
from resources.settings import OpenSearchSettings
from stack.config import StackSettings
from stack.provision import ProvisionError, provision_search
from stack.services.opensearch import OpenSearchServer
from tests.streaming.realtime_helpers import drop_indices


@pytest.mark.integration
def test_the_opensearch_service_provisions_every_alias_once(opensearch: StackSettings) -> None:
    prefix = f"prov-{uuid.uuid4().hex[:10]}"
    settings = opensearch.model_copy(
        update={"opensearch": opensearch.opensearch.model_copy(update={"index_prefix": prefix})}
    )
    client = make_opensearch_client(settings.opensearch)
    try:
        first = OpenSearchServer(settings).provision()
        assert len(first) == len(FAMILIES) and all("created for its alias" in s for s in first)
        for family in FAMILIES:
            assert client.indices.exists_alias(name=alias_name(prefix, family))
        assert OpenSearchServer(settings).provision() == ["aliases up to date"]
    finally:
        drop_indices(client, prefix)
        client.close()


@pytest.mark.unit
def test_an_unreachable_search_store_is_one_clear_error() -> None:
    settings = StackSettings(opensearch=OpenSearchSettings(url="http://127.0.0.1:9"))
    with pytest.raises(ProvisionError, match=r"OpenSearch at http://127.0.0.1:9 is unreachable"):
        provision_search(settings)
