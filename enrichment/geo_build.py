"""Build the offline IP-to-country table shipped in ``enrichment/data/``.

The source is the npm package ``@ip-location-db/geo-whois-asn-country`` (ranges merged from the
five RIRs' GeoFeed, WHOIS and ASN data; data licensed CC BY 4.0 by the NRO, https://www.nro.net/).
Fetch it with the ordinary npm client and convert it::

    npm pack @ip-location-db/geo-whois-asn-country
    tar xzf ip-location-db-geo-whois-asn-country-*.tgz
    uv run python -m enrichment.geo_build package/ --out enrichment/data/

The table keeps only range starts and a country index (adjacent ranges of one country merged,
gaps stored as "no country"); IPv6 is kept at /64 granularity (the high 64 bits).
"""

from __future__ import annotations

import argparse
import csv
import ipaddress
import json
import sys
from pathlib import Path

import numpy as np

SOURCE = "geo-whois-asn-country"


def _ranges(path: Path, v6: bool) -> list[tuple[int, int, str]]:
    out = []
    with path.open(newline="") as f:
        for start, end, cc in csv.reader(f):
            lo, hi = int(ipaddress.ip_address(start)), int(ipaddress.ip_address(end))
            if v6:
                lo, hi = lo >> 64, hi >> 64
            out.append((lo, hi, cc.upper()))
    out.sort()
    return out


def _compact(
    ranges: list[tuple[int, int, str]], codes: dict[str, int]
) -> tuple[list[int], list[int]]:
    """Turn ranges into (starts, country index) with gaps as index 0, merging neighbours."""
    starts: list[int] = []
    index: list[int] = []
    next_free = 0
    for lo, hi, cc in ranges:
        if hi < next_free:
            continue  # covered already (a /64-truncated IPv6 range)
        lo = max(lo, next_free)
        if lo > next_free and (not index or index[-1] != 0):
            starts.append(next_free)
            index.append(0)
        code = codes.setdefault(cc, len(codes))
        if index and index[-1] == code and lo == next_free:
            pass  # adjacent and same country: extend the previous entry
        else:
            starts.append(lo)
            index.append(code)
        next_free = hi + 1
    starts.append(next_free)
    index.append(0)
    return starts, index


def build(package: Path, out: Path) -> Path:
    meta = json.loads((package / "package.json").read_text())
    version = meta["version"]
    codes: dict[str, int] = {"": 0}
    v4_starts, v4_idx = _compact(_ranges(package / f"{SOURCE}-ipv4.csv", False), codes)
    v6_starts, v6_idx = _compact(_ranges(package / f"{SOURCE}-ipv6.csv", True), codes)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{SOURCE}-{version}.npz"
    np.savez_compressed(
        target,
        v4_starts=np.array(v4_starts, dtype=np.uint64),
        v4_index=np.array(v4_idx, dtype=np.uint16),
        v6_starts=np.array(v6_starts, dtype=np.uint64),
        v6_index=np.array(v6_idx, dtype=np.uint16),
        countries=np.array(sorted(codes, key=codes.__getitem__)),
        version=np.array(f"{SOURCE} {version}"),
    )
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", type=Path, help="the unpacked npm package directory")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data")
    args = parser.parse_args()
    target = build(args.package, args.out)
    sys.stdout.write(f"wrote {target} ({target.stat().st_size} bytes)\n")


if __name__ == "__main__":
    main()
