"""Notify's application layer: handlers, delivery, and the ports they use."""
