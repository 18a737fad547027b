"""Placement's entry points: the HTTP app, and the relay and subscribers alone."""
