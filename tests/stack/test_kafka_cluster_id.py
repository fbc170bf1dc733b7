"""Kafka's storage is formatted with a cluster id its argument parser accepts."""

from __future__ import annotations

import base64
import uuid
from unittest import mock

import pytest

from stack.services.kafka import new_cluster_id

pytestmark = pytest.mark.unit


def test_an_id_starting_with_a_dash_is_drawn_again() -> None:
    # 0xF8 encodes to "-" first in URL-safe base64: the storage tool took such an id for an
    # option and refused to format (one start in 64).
    dashed = uuid.UUID(bytes=bytes([0xF8]) + bytes(15))
    plain = uuid.UUID(bytes=bytes([0x10]) + bytes(15))
    assert base64.urlsafe_b64encode(dashed.bytes).decode().startswith("-")
    with mock.patch("uuid.uuid4", side_effect=[dashed, dashed, plain]) as draw:
        cluster_id = new_cluster_id()
    assert draw.call_count == 3
    assert cluster_id == base64.urlsafe_b64encode(plain.bytes).decode().rstrip("=")
    assert len(cluster_id) == 22


def test_ids_are_random_and_never_start_with_a_dash() -> None:
    ids = {new_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert not any(i.startswith("-") for i in ids)
