"""The policy language: a scheme's levels, themes, standards, evidence, workflows and deadlines as data."""

from svqm.policy.loader import load_policies, load_policy, parse_policy
from svqm.policy.models import (
    SUBJECT_KINDS,
    AuditBooking,
    Consultation,
    ConsultationQuestion,
    Deadline,
    EvidenceRequirement,
    Level,
    Policy,
    Question,
    Role,
    Standard,
    SubjectKind,
    Theme,
    TransitionDef,
    Workflow,
)

__all__ = [
    "SUBJECT_KINDS",
    "AuditBooking",
    "Consultation",
    "ConsultationQuestion",
    "Deadline",
    "EvidenceRequirement",
    "Level",
    "Policy",
    "Question",
    "Role",
    "Standard",
    "SubjectKind",
    "Theme",
    "TransitionDef",
    "Workflow",
    "load_policies",
    "load_policy",
    "parse_policy",
]
