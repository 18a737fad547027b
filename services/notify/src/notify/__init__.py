"""The notify service: turns clock events into alerts to the right staff, exactly once.

Layers: ``domain`` (who is told what, and the wording; pure), ``application`` (the
handlers for consumed events, the delivery of recorded alerts, the ports they use),
``adapters`` (SQLite ledger and event store, SMTP, the staff directory CSV, the Kafka
envelope) and ``entrypoints`` (the faust worker and the command line).
"""
