"""IP-to-country geolocation from an offline range table.

The table (``enrichment/data/geo-whois-asn-country-<version>.npz``) is built by
``enrichment.geo_build`` from the npm package ``@ip-location-db/geo-whois-asn-country``: the five
Regional Internet Registries' GeoFeed, WHOIS and ASN data, licensed CC BY 4.0 by the Number
Resource Organization (https://www.nro.net/). Country level only: no city or coordinates.
Private, loopback, link-local, reserved and otherwise non-global addresses get no geo.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from iso3166 import countries_by_alpha2

from contract.records import GeoInfo

ATTRIBUTION = "IP data CC BY 4.0 NRO (nro.net) via ip-location-db"


def _country_name(code: str) -> str | None:
    country = countries_by_alpha2.get(code)
    return country.name if country else None


@lru_cache(maxsize=65_536)
def _search_key(ip: str) -> tuple[int, int] | None:
    """(address family, the key its range table is sorted by) of a global address, else None.

    Cached: parsing dominated a batch's lookups, and the same clients' addresses recur.
    """
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if not addr.is_global:
        return None
    return (4, int(addr)) if addr.version == 4 else (6, int(addr) >> 64)


class GeoDatabase:
    """Vectorised lookups: one ``searchsorted`` per address family per batch."""

    def __init__(self, path: Path) -> None:
        with np.load(path, allow_pickle=False) as data:
            self.v4_starts = data["v4_starts"]
            self.v4_index = data["v4_index"]
            self.v6_starts = data["v6_starts"]
            self.v6_index = data["v6_index"]
            self.countries: list[str] = [str(c) for c in data["countries"]]
            self.version = str(data["version"])
        self.source = f"{self.version} ({ATTRIBUTION})"
        self._infos: list[GeoInfo | None] = [
            GeoInfo(country_code=c, country_name=_country_name(c), source=self.source)
            if c
            else None
            for c in self.countries
        ]

    def lookup_many(self, ips: Sequence[str | None]) -> list[GeoInfo | None]:
        out: list[GeoInfo | None] = [None] * len(ips)
        v4_pos: list[int] = []
        v4_keys: list[int] = []
        v6_pos: list[int] = []
        v6_keys: list[int] = []
        for i, ip in enumerate(ips):
            found = _search_key(ip) if ip else None
            if found is None:
                continue
            if found[0] == 4:
                v4_pos.append(i)
                v4_keys.append(found[1])
            else:
                v6_pos.append(i)
                v6_keys.append(found[1])
        for pos, keys, starts, index in (
            (v4_pos, v4_keys, self.v4_starts, self.v4_index),
            (v6_pos, v6_keys, self.v6_starts, self.v6_index),
        ):
            if not pos:
                continue
            slots = np.searchsorted(starts, np.array(keys, dtype=np.uint64), side="right") - 1
            for i, slot in zip(pos, slots.tolist(), strict=True):
                if slot >= 0:
                    out[i] = self._infos[int(index[slot])]
        return out

    def lookup(self, ip: str | None) -> GeoInfo | None:
        return self.lookup_many([ip])[0]
