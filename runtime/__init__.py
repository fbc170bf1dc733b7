"""The runtime every long-running process of the platform shares, free of Dagster.

``process``: logging, stop signals and ``gc.freeze`` at start-up; ``retry``: the one backoff
policy and its settings; ``worker``: what the three stream workers share (static group
membership, rebalance logging, their common settings); ``metrics``: each stream worker's
Prometheus ``/metrics`` and ``/healthz``, and the parsing of a scrape.
"""
