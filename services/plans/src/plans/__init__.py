"""The plans service: a case from an agreed assessment to the end of its EHC plan.

Layers: ``domain`` (pure decide and evolve), ``application`` (command handlers, the
reaction to intake's events), ``adapters`` (event store, outbox relay, subscriber),
``entrypoints`` (HTTP app, relay, subscriber).
"""
