"""Plans' adapters: its event store, the relay to its topic, the intake subscriber."""
