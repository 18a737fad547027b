"""What each person wants: channels per kind of alert, quiet hours for SMS, a digest.

A person chooses, for approaching and for overdue alerts, ``email``, ``sms``, ``both``
or ``none``. ``none`` is allowed only for an optional kind (approaching): an overdue
alert is how a missed statutory deadline reaches someone, so it always goes by at
least one channel, and ``channels_for`` falls back to email whenever the choice leaves
nothing that can be sent (SMS chosen with no mobile number, or no SMS provider).

Text messages wait out the person's quiet hours (by default 20:00 to 08:00 London time)
and are sent when they end; email is never held back. With ``daily_digest`` on, a
person's approaching alerts are gathered into one email a day instead of one message
each; overdue alerts still go at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from notify.domain.alerts import AlertKind, Channel
from notify.domain.directory import StaffMember
from sendkit.calendar import LONDON


class ChannelChoice(StrEnum):
    """How a person wants one kind of alert."""

    EMAIL = "email"
    SMS = "sms"
    BOTH = "both"
    NONE = "none"


class PreferenceKind(StrEnum):
    """The kinds of alert a person sets channels for."""

    APPROACHING = "approaching"
    OVERDUE = "overdue"


OPTIONAL_KINDS = frozenset({PreferenceKind.APPROACHING})
"""Kinds a person may turn off; an overdue alert always reaches them."""

_CHANNELS: Mapping[ChannelChoice, tuple[Channel, ...]] = {
    ChannelChoice.EMAIL: (Channel.EMAIL,),
    ChannelChoice.SMS: (Channel.SMS,),
    ChannelChoice.BOTH: (Channel.EMAIL, Channel.SMS),
    ChannelChoice.NONE: (),
}


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily London-time window in which no text message is sent.

    ``start`` after ``end`` (20:00 to 08:00) spans midnight; the window includes
    ``start`` and excludes ``end``.
    """

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise ValueError(
                "quiet hours must start and end at different times; to have none, "
                "leave them unset"
            )
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("quiet hours are London wall-clock times, without a zone")

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """``20:00-08:00`` as quiet hours; ValueError says how to write it."""
        start, dash, end = text.strip().partition("-")
        try:
            if not dash:
                raise ValueError(text)
            return cls(time.fromisoformat(start.strip()), time.fromisoformat(end))
        except ValueError as error:
            raise ValueError(
                f"{text!r} is not a quiet-hours window: write it as HH:MM-HH:MM, "
                "such as 20:00-08:00"
            ) from error

    def contains(self, local: time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_allowed(self, moment: datetime) -> datetime:
        """``moment`` if it is outside the window, else the window's end (in UTC).

        The end is the next London wall-clock ``end`` after ``moment``, so on the
        night the clocks change it is still 08:00 local: 07:00 or 08:00 UTC.
        """
        if moment.tzinfo is None:
            raise ValueError("next_allowed needs an aware datetime")
        local = moment.astimezone(LONDON)
        if not self.contains(local.time().replace(tzinfo=None)):
            return moment
        day: date = local.date()
        if local.time().replace(tzinfo=None) >= self.end:
            day += timedelta(days=1)
        end = datetime.combine(day, self.end, tzinfo=LONDON)
        return end.astimezone(moment.tzinfo)


DEFAULT_QUIET_HOURS = QuietHours(time(20, 0), time(8, 0))


@dataclass(frozen=True, slots=True)
class Preferences:
    """One person's choices; an unset kind means email."""

    channels: Mapping[PreferenceKind, ChannelChoice] = field(default_factory=dict)
    quiet_hours: QuietHours | None = DEFAULT_QUIET_HOURS
    daily_digest: bool = False

    def __post_init__(self) -> None:
        # A copy, so the caller's dict cannot change these preferences later.
        object.__setattr__(self, "channels", dict(self.channels))

    def choice(self, kind: PreferenceKind) -> ChannelChoice:
        return self.channels.get(kind, ChannelChoice.EMAIL)

    def to_dict(self) -> dict[str, object]:
        return {
            "channels": {k.value: v.value for k, v in sorted(self.channels.items())},
            "quiet_hours": str(self.quiet_hours) if self.quiet_hours else None,
            "daily_digest": self.daily_digest,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Preferences:
        raw = data.get("channels") or {}
        channels = {
            PreferenceKind(str(k)): ChannelChoice(str(v))
            for k, v in dict(raw).items()  # type: ignore[call-overload]
        }
        quiet = data.get("quiet_hours")
        return cls(
            channels=channels,
            quiet_hours=QuietHours.parse(str(quiet)) if quiet else None,
            daily_digest=bool(data.get("daily_digest", False)),
        )


DEFAULT_PREFERENCES = Preferences()


def preference_problems(
    preferences: Preferences, member: StaffMember
) -> list[tuple[str, str]]:
    """Why ``preferences`` cannot be kept for ``member``: (field, message) pairs."""
    problems: list[tuple[str, str]] = []
    for kind, choice in preferences.channels.items():
        name = f"channels.{kind.value}"
        if choice is ChannelChoice.NONE and kind not in OPTIONAL_KINDS:
            problems.append(
                (
                    name,
                    f"{kind.value} alerts cannot be turned off: a missed statutory "
                    "deadline must reach someone; choose email, sms or both",
                )
            )
        if Channel.SMS in _CHANNELS[choice] and member.mobile is None:
            problems.append(
                (
                    name,
                    f"{choice.value} needs a mobile number: add one to "
                    f"{member.staff_id}'s directory entry first",
                )
            )
    return problems


def preference_kind(kind: AlertKind) -> PreferenceKind:
    """The preference that governs an alert of ``kind``.

    Corrections and escalations are governed as overdue alerts are: they are never
    turned off. (A correction goes by the channel of the alert it corrects.)
    """
    if kind is AlertKind.APPROACHING:
        return PreferenceKind.APPROACHING
    return PreferenceKind.OVERDUE


def channels_for(
    kind: AlertKind,
    member: StaffMember,
    preferences: Preferences,
    *,
    sms_available: bool,
) -> tuple[Channel, ...]:
    """The channels an alert of ``kind`` goes to ``member`` by, given their choice.

    SMS is dropped when the person has no mobile number or no SMS provider is
    configured; if that leaves nothing for a kind that cannot be turned off, the
    alert goes by email.
    """
    wanted_kind = preference_kind(kind)
    wanted = _CHANNELS[preferences.choice(wanted_kind)]
    usable = tuple(
        c
        for c in wanted
        if c is not Channel.SMS or (member.mobile is not None and sms_available)
    )
    if not usable and wanted_kind not in OPTIONAL_KINDS:
        return (Channel.EMAIL,)
    if not usable and wanted:
        # Chose SMS for an optional kind but it cannot be sent: email rather than
        # silently nothing, since the person did ask to be told.
        return (Channel.EMAIL,)
    return usable


DEFAULT_DIGEST_TIME = time(7, 30)


def digest_day(moment: datetime, digest_time: time = DEFAULT_DIGEST_TIME) -> date:
    """The London day of the next digest an alert raised at ``moment`` goes in.

    The digest of a day is gathered at ``digest_time`` London time; an alert raised
    at or after that time waits for the next day's.
    """
    if moment.tzinfo is None:
        raise ValueError("digest_day needs an aware datetime")
    local = moment.astimezone(LONDON)
    if local.time().replace(tzinfo=None) < digest_time:
        return local.date()
    return local.date() + timedelta(days=1)


def digest_due(day: date, digest_time: time = DEFAULT_DIGEST_TIME) -> datetime:
    """The moment (UTC) the digest of the London ``day`` is gathered."""
    return datetime.combine(day, digest_time, tzinfo=LONDON).astimezone(UTC)
