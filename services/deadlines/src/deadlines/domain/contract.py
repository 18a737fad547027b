"""The input events the clock rules read: their type strings, fields and identity.

This is the deadlines service's reading of the published contract of the intake, plans,
reviews and placement services. Only the fields a rule uses are listed; the engine keeps
only those, so a case's state holds dates and keys, never personal details.

Some items are this service's additions to the contract, published here for the owning
services to adopt: the optional ``instance`` field of ``TimeLimitExceptionRecorded``
(which advice an exception concerns); the plans service's own
``TimeLimitExceptionRecorded`` for the advice and re-assessment clocks; the optional
``arranged_on`` of ``ReviewArranged``; two events for the local targets
(``AgencyReferralsMade``, ``ReviewListSentToSenco``, the latter published once per case
on the list); and ``PlanCorrected``, the plans service's
counterpart of ``RequestCorrected``. Until the owners publish them, the clocks that need
them cannot take an exception, never stop (local targets) or cannot be corrected.
Intake publishes ``RequestPresentedAtSurgery`` (the stop of the Local Area Surgery
target), at most one per case, and corrects its date with
``SurgeryPresentationCorrected``, of ``RequestCorrected``'s shape (``field`` is always
``presented_on``).
Plans publishes ``PlanCorrected`` (naming the corrected event in ``event_id``, which the
engine prefers to matching ``old_value``) and the optional ``review_id`` of
``AmendmentProposed``, the review whose decision to amend the notice carries out.
"""

from __future__ import annotations

from collections.abc import Mapping

from deadlines.domain.model import Correction, EventSpec, FieldKind, FieldSpec

DATE = FieldKind.DATE
TIMESTAMP = FieldKind.TIMESTAMP
TEXT = FieldKind.TEXT
INT = FieldKind.INT
YEAR = FieldKind.YEAR
BOOL = FieldKind.BOOL


def _f(name: str, kind: FieldKind, required: bool = True) -> FieldSpec:
    return FieldSpec(name, kind, required)


# intake
REQUEST_RECEIVED = "send.intake.RequestReceived.v1"
ASSESSMENT_AGREED = "send.intake.AssessmentAgreed.v1"
ASSESSMENT_REFUSED = "send.intake.AssessmentRefused.v1"
EXCEPTION_RECORDED = "send.intake.TimeLimitExceptionRecorded.v1"
REQUEST_WITHDRAWN = "send.intake.RequestWithdrawn.v1"
REQUEST_CORRECTED = "send.intake.RequestCorrected.v1"
REQUEST_PRESENTED = "send.intake.RequestPresentedAtSurgery.v1"
SURGERY_PRESENTATION_CORRECTED = "send.intake.SurgeryPresentationCorrected.v1"
# plans
ADVICE_REQUESTED = "send.plans.AdviceRequested.v1"
ADVICE_RECEIVED = "send.plans.AdviceReceived.v1"
NO_PLAN_NOTICE_SENT = "send.plans.NoPlanNoticeSent.v1"
DRAFT_PLAN_ISSUED = "send.plans.DraftPlanIssued.v1"
PLAN_ISSUED = "send.plans.PlanIssued.v1"
AMENDMENT_PROPOSED = "send.plans.AmendmentProposed.v1"
PLAN_AMENDED = "send.plans.PlanAmended.v1"
PLAN_CEASED = "send.plans.PlanCeased.v1"
TRANSFER_OUT_NOTIFIED = "send.plans.PlanTransferOutNotified.v1"
PLAN_TRANSFERRED_OUT = "send.plans.PlanTransferredOut.v1"
PLAN_TRANSFERRED_IN = "send.plans.PlanTransferredIn.v1"
NEW_COUNCIL_NOTICE_SENT = "send.plans.NewCouncilNoticeSent.v1"
REASSESSMENT_REQUESTED = "send.plans.ReassessmentRequested.v1"
REASSESSMENT_DECIDED = "send.plans.ReassessmentDecided.v1"
PLAN_CORRECTED = "send.plans.PlanCorrected.v1"
PLAN_EXCEPTION_RECORDED = "send.plans.TimeLimitExceptionRecorded.v1"
# reviews
REVIEW_ARRANGED = "send.reviews.ReviewArranged.v1"
REVIEW_PAPERS_SENT = "send.reviews.ReviewPapersSent.v1"
REVIEW_HELD = "send.reviews.ReviewHeld.v1"
REVIEW_REPORT_RECEIVED = "send.reviews.ReviewReportReceived.v1"
REVIEW_DECIDED = "send.reviews.ReviewDecided.v1"
REFERRALS_MADE = "send.reviews.AgencyReferralsMade.v1"
REVIEW_LIST_SENT = "send.reviews.ReviewListSentToSenco.v1"
# placement
SETTING_CONSULTED = "send.placement.SettingConsulted.v1"
CONSULTATION_ANSWERED = "send.placement.ConsultationAnswered.v1"
PHASE_TRANSFER_DUE = "send.placement.PhaseTransferDue.v1"
POST16_MOVE_PROPOSED = "send.placement.Post16MoveProposed.v1"


EVENT_SPECS: tuple[EventSpec, ...] = (
    EventSpec(REQUEST_RECEIVED, (_f("received_at", TIMESTAMP),), identity=()),
    EventSpec(ASSESSMENT_AGREED, (_f("notified_on", DATE),), identity=()),
    EventSpec(ASSESSMENT_REFUSED, (_f("notified_on", DATE),), identity=()),
    *(
        EventSpec(
            kind,
            (
                _f("clock", TEXT),
                _f("reason", TEXT),
                _f("instance", TEXT, required=False),
            ),
        )
        for kind in (EXCEPTION_RECORDED, PLAN_EXCEPTION_RECORDED)
    ),
    EventSpec(REQUEST_WITHDRAWN, (_f("withdrawn_on", DATE),)),
    EventSpec(REQUEST_PRESENTED, (_f("presented_on", DATE),)),
    EventSpec(
        ADVICE_REQUESTED,
        (_f("advice_id", TEXT), _f("received_by_body_on", DATE)),
        identity=("advice_id",),
    ),
    EventSpec(
        ADVICE_RECEIVED,
        (_f("advice_id", TEXT), _f("received_on", DATE)),
        identity=("advice_id",),
    ),
    EventSpec(NO_PLAN_NOTICE_SENT, (_f("notified_on", DATE),)),
    EventSpec(DRAFT_PLAN_ISSUED, (_f("served_on", DATE),)),
    EventSpec(PLAN_ISSUED, (_f("issued_on", DATE),)),
    EventSpec(
        AMENDMENT_PROPOSED,
        (_f("notice_sent_on", DATE), _f("review_id", TEXT, required=False)),
    ),
    EventSpec(
        PLAN_AMENDED, (_f("issued_on", DATE), _f("setting_urn", TEXT, required=False))
    ),
    EventSpec(PLAN_CEASED, (_f("ceased_on", DATE),)),
    EventSpec(
        TRANSFER_OUT_NOTIFIED,
        (_f("move_on", DATE, required=False), _f("learned_on", DATE)),
        identity=(),
    ),
    EventSpec(PLAN_TRANSFERRED_OUT, (_f("transferred_on", DATE),)),
    EventSpec(PLAN_TRANSFERRED_IN, (_f("transferred_on", DATE),)),
    EventSpec(NEW_COUNCIL_NOTICE_SENT, (_f("notified_on", DATE),)),
    EventSpec(REASSESSMENT_REQUESTED, (_f("requested_on", DATE),)),
    EventSpec(REASSESSMENT_DECIDED, (_f("notified_on", DATE), _f("agreed", BOOL))),
    EventSpec(
        REVIEW_ARRANGED,
        (
            _f("review_id", TEXT),
            _f("meeting_on", DATE),
            _f("arranged_on", DATE, required=False),
        ),
        identity=("review_id",),
    ),
    EventSpec(
        REVIEW_PAPERS_SENT,
        (_f("review_id", TEXT), _f("sent_on", DATE)),
        identity=("review_id",),
    ),
    EventSpec(
        REVIEW_HELD,
        (_f("review_id", TEXT), _f("held_on", DATE)),
        identity=("review_id",),
    ),
    EventSpec(
        REVIEW_REPORT_RECEIVED,
        (_f("review_id", TEXT), _f("received_on", DATE)),
        identity=("review_id",),
    ),
    EventSpec(
        REVIEW_DECIDED,
        (_f("review_id", TEXT), _f("decision", TEXT), _f("notified_on", DATE)),
        identity=("review_id",),
    ),
    EventSpec(
        REFERRALS_MADE,
        (_f("review_id", TEXT), _f("made_on", DATE)),
        identity=("review_id",),
    ),
    EventSpec(
        REVIEW_LIST_SENT,
        (_f("sent_on", DATE), _f("term_starts_on", DATE, required=False)),
    ),
    EventSpec(
        SETTING_CONSULTED,
        (_f("consultation_id", TEXT), _f("sent_on", DATE)),
        identity=("consultation_id",),
    ),
    EventSpec(
        CONSULTATION_ANSWERED,
        (_f("consultation_id", TEXT), _f("answered_on", DATE)),
        identity=("consultation_id",),
    ),
    EventSpec(
        PHASE_TRANSFER_DUE,
        (_f("transfer", TEXT), _f("transfer_year", YEAR)),
        identity=("transfer", "transfer_year"),
    ),
    EventSpec(POST16_MOVE_PROPOSED, (_f("move_on", DATE),), identity=()),
)

CORRECTIONS: tuple[Correction, ...] = (
    Correction(
        REQUEST_CORRECTED,
        {
            "received_at": (REQUEST_RECEIVED,),
            "notified_on": (ASSESSMENT_AGREED, ASSESSMENT_REFUSED),
        },
    ),
    Correction(SURGERY_PRESENTATION_CORRECTED, {"presented_on": (REQUEST_PRESENTED,)}),
    Correction(
        PLAN_CORRECTED,
        {
            "issued_on": (PLAN_ISSUED, PLAN_AMENDED),
            "served_on": (DRAFT_PLAN_ISSUED,),
            "notice_sent_on": (AMENDMENT_PROPOSED,),
            "notified_on": (
                NO_PLAN_NOTICE_SENT,
                NEW_COUNCIL_NOTICE_SENT,
                REASSESSMENT_DECIDED,
            ),
            "transferred_on": (PLAN_TRANSFERRED_OUT, PLAN_TRANSFERRED_IN),
            "requested_on": (REASSESSMENT_REQUESTED,),
            "ceased_on": (PLAN_CEASED,),
        },
    ),
)

EXCEPTION_TYPES: tuple[str, ...] = (EXCEPTION_RECORDED, PLAN_EXCEPTION_RECORDED)
"""Events that record an exception to a named clock: intake's for the assessment clocks,
plans' for advice and the plan after a re-assessment."""

EVENTS_BY_TYPE: Mapping[str, EventSpec] = {spec.type: spec for spec in EVENT_SPECS}
CORRECTIONS_BY_TYPE: Mapping[str, Correction] = {c.type: c for c in CORRECTIONS}
