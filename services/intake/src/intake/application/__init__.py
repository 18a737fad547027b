"""Intake's application layer: command handlers and the case list read model."""
