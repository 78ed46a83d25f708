"""Every table of Prefloop, one module per aggregate (SPEC §2 and §10)."""

from app.db.base import Base
from app.db.models.exports import Export
from app.db.models.labeling import Assignment, AssignmentStatus, Judgment
from app.db.models.projects import Project, ProjectMember, ProjectStatus
from app.db.models.prompts import Completion, Prompt
from app.db.models.runs import RegisteredWorker, RunKind, RunMetric, RunStatus, TrainingRun
from app.db.models.suspects import SuspectDecision, SuspectReview
from app.db.models.users import ApiToken, LoginAttempt, Role, User, UserSession

__all__ = [
    "ApiToken",
    "Assignment",
    "AssignmentStatus",
    "Base",
    "Completion",
    "Export",
    "Judgment",
    "LoginAttempt",
    "Project",
    "ProjectMember",
    "ProjectStatus",
    "Prompt",
    "RegisteredWorker",
    "Role",
    "RunKind",
    "RunMetric",
    "RunStatus",
    "SuspectDecision",
    "SuspectReview",
    "TrainingRun",
    "User",
    "UserSession",
]
