"""Plans' application layer: command handlers, queries, and reactions to intake."""
