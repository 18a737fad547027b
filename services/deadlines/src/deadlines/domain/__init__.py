"""The pure heart of the deadlines service: the clock rules table and its engine.

Nothing here touches Kafka, faust or a clock: ``engine.apply`` and ``engine.tick`` are
functions of a case's state, an event and "now", and the state is plain JSON.
"""
