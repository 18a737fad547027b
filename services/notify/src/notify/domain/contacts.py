"""Checking and normalising the contact details of staff: email addresses, UK mobiles.

Both functions raise ``InvalidContact`` with a message that says what is wrong and how
to write the value, so the HTTP API and the CSV import report it as it is. A mobile
number is stored as ``+447...`` (the form GOV.UK Notify accepts and answers with),
whichever way it was typed: ``07700 900123``, ``+44 (0)7700 900123`` or
``0044 7700 900123``.
"""

from __future__ import annotations

import re

from notify.errors import NotifyError

MAX_EMAIL_LENGTH = 254
_MOBILE_SEPARATORS = re.compile(r"[\s().\-]")
_EMAIL_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+$")
_DOMAIN_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


class InvalidContact(NotifyError, ValueError):
    """An email address or a mobile number that notify cannot send to."""


def normalise_email(value: str) -> str:
    """``value`` as an email address (domain in lower case), or ``InvalidContact``."""
    text = value.strip()
    local, at, domain = text.rpartition("@")
    labels = domain.split(".")
    if (
        not at
        or not local
        or len(text) > MAX_EMAIL_LENGTH
        or not _EMAIL_LOCAL.match(local)
        or local.startswith(".")
        or local.endswith(".")
        or ".." in local
        or len(labels) < 2
        or not all(_DOMAIN_LABEL.match(label) for label in labels)
    ):
        raise InvalidContact(
            f"{value!r} is not an email address: write it as name@council.gov.uk"
        )
    return f"{local}@{domain.lower()}"


def normalise_uk_mobile(value: str) -> str:
    """``value`` as a UK mobile number ``+447xxxxxxxxx``, or ``InvalidContact``."""
    text = _MOBILE_SEPARATORS.sub("", value.strip())
    international = text.startswith("+")
    digits = text[1:] if international else text
    if not digits.isdigit():
        raise InvalidContact(
            f"{value!r} is not a phone number: use digits, spaces and an optional "
            "leading +, as in 07700 900123"
        )
    if digits.startswith("0044"):
        digits = digits[4:]
    elif digits.startswith("44") and (international or len(digits) == 12):
        digits = digits[2:]
    elif international:
        raise InvalidContact(
            f"{value!r} is not a UK mobile number: notify sends text messages to UK "
            "mobiles only (07..., or +44 7...)"
        )
    # "+44 (0)7700 900123" leaves a trunk 0 after the country code.
    digits = digits.removeprefix("0")
    if not digits.startswith("7"):
        raise InvalidContact(
            f"{value!r} is not a UK mobile number: UK mobile numbers start 07 "
            "(or +44 7)"
        )
    if len(digits) != 10:
        which = "too many" if len(digits) > 10 else "not enough"
        raise InvalidContact(
            f"{value!r} has {which} digits for a UK mobile number: write 11 digits "
            "starting 07, as in 07700 900123"
        )
    return f"+44{digits}"
