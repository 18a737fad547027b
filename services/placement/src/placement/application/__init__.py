"""Placement's application layer: command handlers, the facts read model, the index."""
