"""Reviews' entry points: the FastAPI app, the outbox relay and the subscribers."""
