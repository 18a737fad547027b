"""Notify's entry points: the faust worker and the command line."""
