"""The reviews service: the annual review cycle of an EHC plan, and interim reviews.

Layers: ``domain`` (pure decide and evolve), ``application`` (command handlers, the
reactions to other services' events, the review list read model), ``adapters`` (event
store, outbox relay, Kafka subscribers), ``entrypoints`` (HTTP app, relay, subscriber).
"""
