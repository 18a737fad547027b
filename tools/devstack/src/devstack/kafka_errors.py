"""The errors of the development Kafka launcher, under one root.

Every message says what went wrong and what to do about it, so a failing test or a
failing ``make run`` can be fixed from the message alone.
"""

from __future__ import annotations


class KafkaLauncherError(Exception):
    """Root of every error raised by ``devstack.kafka`` and its helper modules."""


class JarFetchError(KafkaLauncherError):
    """The broker's jars could not be fetched with Maven."""


class BrokerStartError(KafkaLauncherError):
    """The broker did not become ready; the message carries the tail of its log."""


class TopicSetupError(KafkaLauncherError):
    """Topics could not be created, or an existing topic differs from the registry."""
