"""The placement service: consultations, the placement panel, transfers, transport.

Layers: ``domain`` (pure decide and evolve, and the phase-transfer rules),
``application`` (command handlers, the read model of intake's and plans' facts, the
index of cases and panels), ``adapters`` (event store, outbox relay, subscribers),
``entrypoints`` (HTTP app, relay, subscribers).
"""
