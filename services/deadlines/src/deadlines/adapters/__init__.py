"""Adapters of the deadlines service: the faust table behind the case states, Kafka
offsets and publishing for the worker, and the read model in the API's store."""
