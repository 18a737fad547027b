"""Notify's adapters: SQLite ledger and store, SMTP, directory CSV, Kafka records."""
