"""The simulated world the demo, the tests, the benchmarks and the model's training share.

- ``world``: the shop (catalogue, prices, visitors, funnel rates) and the plant's sensors,
  once;
- ``events``: seeded event-by-event generators, as producers send events;
- ``raw_zone``: the same shop as enriched raw-zone rows, vectorised (millions of rows in
  seconds), with duplicates, late events and defects counted in a truth;
- ``training``: the bot-score model's labelled training stream.

It imports only the ground floor (``contract``, ``resources``); every stage may use it.
"""
