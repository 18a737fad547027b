"""The intake service: requests for an EHC needs assessment and the decision to assess.

Layers: ``domain`` (pure decide and evolve), ``application`` (command handlers and the
case list), ``adapters`` (event store, outbox relay), ``entrypoints`` (HTTP app, relay).
"""
