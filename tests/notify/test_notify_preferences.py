"""Contact details, preferences, quiet hours, digest days and terms, as pure rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from notify_factories import COORDINATOR, LONE_COORDINATOR

from notify.domain.alerts import AlertKind, Channel
from notify.domain.contacts import (
    InvalidContact,
    normalise_email,
    normalise_uk_mobile,
)
from notify.domain.directory import InvalidStaff, build_member
from notify.domain.preferences import (
    DEFAULT_QUIET_HOURS,
    ChannelChoice,
    PreferenceKind,
    Preferences,
    QuietHours,
    channels_for,
    digest_day,
    digest_due,
    preference_problems,
)
from notify.domain.terms import Term, parse_terms, parse_terms_csv, term_to_list
from notify.errors import ConfigurationError


@pytest.mark.parametrize(
    "typed",
    [
        "07700 900123",
        "07700900123",
        "+44 7700 900123",
        "+44 (0)7700 900123",
        "0044 7700 900123",
        "447700900123",
        "07700-900-123",
    ],
)
def test_uk_mobiles_are_read_however_they_are_typed(typed: str) -> None:
    assert normalise_uk_mobile(typed) == "+447700900123"


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("020 7946 0000", "UK mobile numbers start 07"),
        ("07700 90012", "not enough digits"),
        ("07700 9001234", "too many digits"),
        ("+33 6 12 34 56 78", "UK mobiles only"),
        ("07700 9OO123", "use digits"),
    ],
)
def test_other_numbers_are_refused_saying_why(typed: str, says: str) -> None:
    with pytest.raises(InvalidContact, match=says):
        normalise_uk_mobile(typed)


def test_email_addresses_are_checked_and_their_domain_lowered() -> None:
    assert normalise_email(" Alex.C@Council.Example ") == "Alex.C@council.example"
    for bad in ("alex", "alex@", "@council.example", "a b@c.example", "a@c", "a@-c.uk"):
        with pytest.raises(InvalidContact, match="is not an email address"):
            normalise_email(bad)


def test_an_entry_names_every_bad_field_at_once() -> None:
    with pytest.raises(InvalidStaff) as error:
        build_member(
            staff_id="has space",
            name=" ",
            email="nope",
            role="wizard",
            mobile="12345",
            school_urn="12",
        )

    assert {f for f, _ in error.value.field_errors} == {
        "staff_id",
        "name",
        "email",
        "role",
        "mobile",
        "school_urn",
    }


def test_a_senco_needs_a_school_and_roles_accept_a_spreadsheet_s_words() -> None:
    with pytest.raises(InvalidStaff, match="a SENCO needs the URN"):
        build_member(staff_id="s-1", name="S", email="s@school.example", role="senco")

    member = build_member(
        staff_id="c-1", name="C  One", email="c@council.example", role="EHCCO"
    )
    assert (member.role, member.name, member.mobile) == ("coordinator", "C One", None)


def test_overdue_alerts_cannot_be_turned_off_and_sms_needs_a_mobile() -> None:
    chosen = Preferences(
        channels={
            PreferenceKind.OVERDUE: ChannelChoice.NONE,
            PreferenceKind.APPROACHING: ChannelChoice.SMS,
        }
    )

    problems = dict(preference_problems(chosen, LONE_COORDINATOR))

    assert "cannot be turned off" in problems["channels.overdue"]
    assert "needs a mobile number" in problems["channels.approaching"]
    assert (
        preference_problems(
            Preferences(channels={PreferenceKind.APPROACHING: ChannelChoice.NONE}),
            COORDINATOR,
        )
        == []
    )


def test_channels_follow_the_choice_and_a_miss_always_reaches_someone() -> None:
    both = Preferences(
        channels={
            PreferenceKind.APPROACHING: ChannelChoice.NONE,
            PreferenceKind.OVERDUE: ChannelChoice.BOTH,
        }
    )

    assert (
        channels_for(AlertKind.APPROACHING, COORDINATOR, both, sms_available=True) == ()
    )
    assert channels_for(AlertKind.OVERDUE, COORDINATOR, both, sms_available=True) == (
        Channel.EMAIL,
        Channel.SMS,
    )
    # No SMS provider, or no number: what is left of "both" is email...
    assert channels_for(AlertKind.OVERDUE, COORDINATOR, both, sms_available=False) == (
        Channel.EMAIL,
    )
    # ...and an SMS-only choice falls back to email rather than to nothing.
    sms_only = Preferences(channels={PreferenceKind.OVERDUE: ChannelChoice.SMS})
    assert channels_for(
        AlertKind.OVERDUE, LONE_COORDINATOR, sms_only, sms_available=True
    ) == (Channel.EMAIL,)
    # Even a stored "none" for overdue (which the API refuses) cannot silence a miss.
    forced = Preferences(channels={PreferenceKind.OVERDUE: ChannelChoice.NONE})
    assert channels_for(AlertKind.OVERDUE, COORDINATOR, forced, sms_available=True) == (
        Channel.EMAIL,
    )
    assert channels_for(
        AlertKind.ESCALATION, COORDINATOR, forced, sms_available=True
    ) == (Channel.EMAIL,)


def test_quiet_hours_hold_a_text_until_eight_in_the_morning_london_time() -> None:
    quiet = DEFAULT_QUIET_HOURS

    # Winter (GMT): 21:00 UTC is 21:00 in London; 08:00 GMT is 08:00 UTC.
    assert quiet.next_allowed(datetime(2025, 2, 10, 21, 0, tzinfo=UTC)) == datetime(
        2025, 2, 11, 8, 0, tzinfo=UTC
    )
    # After midnight, the same morning.
    assert quiet.next_allowed(datetime(2025, 2, 11, 3, 0, tzinfo=UTC)) == datetime(
        2025, 2, 11, 8, 0, tzinfo=UTC
    )
    # Summer (BST): 19:30 UTC is 20:30 in London; 08:00 BST is 07:00 UTC.
    assert quiet.next_allowed(datetime(2025, 7, 1, 19, 30, tzinfo=UTC)) == datetime(
        2025, 7, 2, 7, 0, tzinfo=UTC
    )
    # Outside the hours, at once: 19:59 GMT, and 07:00 UTC in summer (08:00 BST).
    at_once = datetime(2025, 2, 10, 19, 59, tzinfo=UTC)
    assert quiet.next_allowed(at_once) == at_once
    assert quiet.next_allowed(datetime(2025, 7, 2, 7, 0, tzinfo=UTC)) == datetime(
        2025, 7, 2, 7, 0, tzinfo=UTC
    )


def test_quiet_hours_across_the_clock_changes() -> None:
    quiet = DEFAULT_QUIET_HOURS

    # Clocks go forward at 01:00 GMT on Sun 30 March 2025: a text raised at 21:00 GMT
    # on the Saturday waits until 08:00 BST, which is 07:00 UTC (10 hours, not 11).
    spring = quiet.next_allowed(datetime(2025, 3, 29, 21, 0, tzinfo=UTC))
    assert spring == datetime(2025, 3, 30, 7, 0, tzinfo=UTC)
    # Clocks go back at 02:00 BST on Sun 26 October 2025: a text raised at 20:30 BST
    # (19:30 UTC) on the Saturday waits until 08:00 GMT, which is 08:00 UTC.
    autumn = quiet.next_allowed(datetime(2025, 10, 25, 19, 30, tzinfo=UTC))
    assert autumn == datetime(2025, 10, 26, 8, 0, tzinfo=UTC)
    # 07:30 UTC on the Sunday after the spring change is 08:30 BST: not quiet.
    after = datetime(2025, 3, 30, 7, 30, tzinfo=UTC)
    assert quiet.next_allowed(after) == after


def test_quiet_hours_within_one_day_and_bad_windows() -> None:
    lunch = QuietHours.parse("12:00-13:30")
    noon = datetime(2025, 2, 10, 12, 15, tzinfo=UTC)

    assert lunch.next_allowed(noon) == datetime(2025, 2, 10, 13, 30, tzinfo=UTC)
    assert str(lunch) == "12:00-13:30"
    for bad in ("20:00", "8pm-8am", "09:00-09:00"):
        with pytest.raises(ValueError, match="quiet"):
            QuietHours.parse(bad)


def test_the_digest_day_turns_at_the_digest_time_in_london() -> None:
    # 07:29 GMT goes in today's digest; 07:30 waits for tomorrow's.
    assert digest_day(datetime(2025, 2, 10, 7, 29, tzinfo=UTC)) == date(2025, 2, 10)
    assert digest_day(datetime(2025, 2, 10, 7, 30, tzinfo=UTC)) == date(2025, 2, 11)
    # In summer 07:00 UTC is 08:00 BST, after 07:30: tomorrow's.
    assert digest_day(datetime(2025, 7, 1, 7, 0, tzinfo=UTC)) == date(2025, 7, 2)
    assert digest_due(date(2025, 7, 1), time(7, 30)) == datetime(
        2025, 7, 1, 6, 30, tzinfo=UTC
    )


def test_terms_are_council_data_and_lists_go_out_before_each_starts() -> None:
    terms = parse_terms("2026-01-05/2026-03-27, 2025-09-03/2025-12-19")
    spring = Term(date(2026, 1, 5), date(2026, 3, 27))

    assert terms[1] == spring
    # 10 working days before Mon 5 Jan 2026, skipping the Christmas bank holidays
    # (25, 26 Dec and 1 Jan): Wed 17 Dec 2025.
    assert spring.list_from(10) == date(2025, 12, 17)
    assert term_to_list(terms, date(2025, 12, 16), 10) is None
    assert term_to_list(terms, date(2025, 12, 17), 10) == spring
    assert term_to_list(terms, date(2026, 1, 4), 10) == spring
    assert term_to_list(terms, date(2026, 1, 5), 10) is None
    assert parse_terms_csv("starts_on,ends_on\n2026-01-05,2026-03-27\n") == (spring,)
    with pytest.raises(ConfigurationError, match="overlap"):
        parse_terms("2025-09-03/2025-12-19,2025-12-01/2026-01-10")
    with pytest.raises(ConfigurationError, match="YYYY-MM-DD"):
        parse_terms("2025-09-03/soon")
