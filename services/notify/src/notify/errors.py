"""The root of every error the notify service raises on purpose."""

from __future__ import annotations


class NotifyError(Exception):
    """Something notify cannot do; the message says what was wrong and how to fix it."""


class UnreadableMessage(NotifyError):
    """A consumed message is not an event notify understands; it goes to the DLQ."""


class DirectoryError(NotifyError):
    """The staff directory file is missing or malformed."""


class ConfigurationError(NotifyError):
    """A setting has a value notify cannot run with."""


class LedgerError(NotifyError):
    """The ledger was asked for something its records do not allow."""
