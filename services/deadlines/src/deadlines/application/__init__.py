"""The deadlines service's application layer: ordering inputs, applying them to the
engine, and turning the engine's outputs into records, with no faust or Kafka client
in sight (the ports in ``deadlines.application.ports`` stand for them)."""
