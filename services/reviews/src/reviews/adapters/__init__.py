"""Reviews' adapters: its event store, the relay to its topic, its Kafka subscribers."""
