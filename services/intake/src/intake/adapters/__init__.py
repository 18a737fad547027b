"""Intake's adapters: the event store it opens and the relay to its Kafka topic."""
