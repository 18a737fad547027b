"""Entry points of the deadlines service: the faust worker and the read API."""
