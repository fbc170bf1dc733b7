"""Personal data across every stage: tracing, erasure and pseudonyms.

``trace`` says where one event is; ``forget`` erases a person, with its audit; ``pseudonyms``
keys personal fields. Below the stages like ``contract/`` and ``resources/``: it imports only
those, so the CLI and the Dagster code location can both use it.
"""
