"""Personal data across every stage: tracing an event, erasing a person, pseudonyms.

Where one event is (``trace``), erasing a person (``forget``, with its audit), and keyed
pseudonyms of personal fields (``pseudonyms``).

Below the stages like ``contract/`` and ``resources/``: it imports only those, so the CLI
and the Dagster code location can both use it.
"""
