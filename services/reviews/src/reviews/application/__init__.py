"""Reviews' application layer: command handlers, reactions and the review lists."""
