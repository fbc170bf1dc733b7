"""Dependencies of the routes: the collector core, the caller, the request context.

All are ``async def``: they do no I/O, and FastAPI would run a plain ``def`` dependency in its
thread pool, a round trip per dependency per request.
"""

from __future__ import annotations

import uuid
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from ingestion.core.auth import ANONYMOUS, KeyStore, Principal, bearer_token
from ingestion.core.config import CollectorSettings
from ingestion.core.ingest import Collector, RequestContext


async def get_collector(request: Request) -> Collector:
    collector: Collector = request.app.state.collector
    return collector


async def get_settings(request: Request) -> CollectorSettings:
    settings: CollectorSettings = request.app.state.settings
    return settings


CollectorDep = Annotated[Collector, Depends(get_collector)]
SettingsDep = Annotated[CollectorSettings, Depends(get_settings)]


def principal_for(
    settings: CollectorSettings, keys: KeyStore, authorization: str | None, api_key: str | None
) -> Principal:
    """Who sends a request, from its ``Authorization`` or ``X-API-Key`` header.

    Raises:
        HTTPException: 401 without a valid key, 403 for a key that may not send events.
    """
    if settings.collector.auth_disabled:
        return ANONYMOUS
    principal = keys.authenticate(bearer_token(authorization) or api_key)
    if principal is None:
        raise HTTPException(
            401,
            detail="missing or invalid API key (send 'Authorization: Bearer <key>')",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not principal.can_write:
        raise HTTPException(403, detail=f"producer '{principal.producer}' may not send events")
    return principal


async def authenticate(request: Request, settings: SettingsDep) -> Principal:
    return principal_for(
        settings,
        request.app.state.keys,
        request.headers.get("authorization"),
        request.headers.get("x-api-key"),
    )


ProducerDep = Annotated[Principal, Depends(authenticate)]


def client_ip(
    peer: str | None, forwarded_for: str | None, settings: CollectorSettings
) -> str | None:
    """The peer address, or the client named by X-Forwarded-For when the peer is trusted."""
    trusted = settings.collector.trusted_proxies
    if not peer or not forwarded_for or not trusted:
        return peer

    def parse(addr: str) -> IPv4Address | IPv6Address | None:
        try:
            return ip_address(addr)
        except ValueError:
            return None

    def is_trusted(addr: IPv4Address | IPv6Address) -> bool:
        return any(addr in net for net in trusted)

    peer_ip = parse(peer)
    if peer_ip is None or not is_trusted(peer_ip):
        return peer
    # Walk from the nearest hop outwards; the first untrusted address is the client. A hop that
    # is not an address means the header cannot be believed: keep the peer.
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        hop_ip = parse(hop)
        if hop_ip is None:
            return peer
        if not is_trusted(hop_ip):
            return str(hop_ip)
    return peer


def context_for(
    settings: CollectorSettings,
    principal: Principal,
    peer: str | None,
    forwarded_for: str | None,
    user_agent: str | None,
    supplied_id: str | None,
) -> RequestContext:
    """A REST request's context: the caller, its address and agent, the request id."""
    supplied = supplied_id or ""
    request_id = supplied[:128] if supplied.isprintable() and supplied else str(uuid.uuid4())
    return RequestContext(
        producer=principal.producer,
        client_ip=client_ip(peer, forwarded_for, settings),
        user_agent=user_agent,
        request_id=request_id,
        path="rest",
    )


async def request_context(
    request: Request, principal: ProducerDep, settings: SettingsDep
) -> RequestContext:
    return context_for(
        settings,
        principal,
        request.client.host if request.client else None,
        request.headers.get("x-forwarded-for"),
        request.headers.get("user-agent"),
        request.headers.get("x-request-id"),
    )


ContextDep = Annotated[RequestContext, Depends(request_context)]
