"""Intake's entry points: the FastAPI app and the stand-alone outbox relay."""
