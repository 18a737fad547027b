"""Placement's adapters: its event store, the relay to its topic, its subscribers."""
