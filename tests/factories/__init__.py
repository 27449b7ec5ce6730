"""factory-boy factories for every model; objects are built in their initial state.

Later states come from the services (or the lifecycle methods in model tests),
so tests never fabricate impossible states.
"""

import datetime
import hashlib

import factory
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.utils import timezone

from approvals.choices import ApprovalType, Designation, ReviewPointSeverity
from approvals.models import Approval, DisclosureChecklist, ProfessionalQualification, ReviewPoint
from artefacts.choices import ArtefactType, DataProviderType
from artefacts.models import Artefact, DataReliance
from audit.choices import AuditAction, BackupType
from audit.models import AuditLog, Backup, Recovery
from conversations.choices import MessageRole
from conversations.models import ChatMessage, Session
from engagements.choices import EngagementType, TeamRole
from engagements.models import Engagement, EngagementMember
from workflows.choices import WorkflowType
from workflows.models import ReplayRecord, WorkflowRun

TRIANGLE_CSV = b"origin,development,value\n2020,12,100\n2020,24,150\n2021,12,110\n"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "password")

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save(update_fields=["password"])


class StaffUserFactory(UserFactory):
    is_staff = True


class SuperUserFactory(UserFactory):
    username = factory.Sequence(lambda n: f"admin{n}")
    is_staff = True
    is_superuser = True


class EngagementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Engagement

    client_code = factory.Sequence(lambda n: f"CL{n:04d}")
    client_name = factory.Faker("company")
    name = factory.Sequence(lambda n: f"Year-end reserving review {n}")
    engagement_type = EngagementType.RESERVING
    period_start = datetime.date(2025, 1, 1)
    period_end = datetime.date(2025, 12, 31)
    due_date = factory.LazyFunction(lambda: timezone.now().date() + datetime.timedelta(days=20))


class EngagementMemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EngagementMember

    engagement = factory.SubFactory(EngagementFactory)
    user = factory.SubFactory(UserFactory)
    role = TeamRole.ACTUARY


class WorkflowRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WorkflowRun

    engagement = factory.SubFactory(EngagementFactory)
    workflow_type = WorkflowType.RESERVE_CALCULATION
    name = factory.Sequence(lambda n: f"Chain ladder run {n}")
    period = "2025-Q4"
    step_count = 4


class ArtefactFactory(factory.django.DjangoModelFactory):
    """An artefact with real bytes in storage; hash and size match its content."""

    class Meta:
        model = Artefact

    class Params:
        content = TRIANGLE_CSV

    engagement = factory.SubFactory(EngagementFactory)
    artefact_type = ArtefactType.TRIANGLE
    name = factory.Sequence(lambda n: f"Paid claims triangle {n}")
    file_name = "triangle.csv"
    mime_type = "text/csv"
    content_hash = factory.LazyAttribute(lambda a: hashlib.sha256(a.content).hexdigest())
    file_size = factory.LazyAttribute(lambda a: len(a.content))
    file = factory.LazyAttribute(lambda a: ContentFile(a.content, name=a.file_name))
    storage_path = ""


class ApprovalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Approval

    artefact = factory.SubFactory(ArtefactFactory)
    engagement = factory.LazyAttribute(lambda a: a.artefact.engagement if a.artefact else None)
    approval_type = ApprovalType.ARTEFACT_REVIEW
    requested_by = factory.SubFactory(UserFactory)


class ProfessionalQualificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProfessionalQualification

    user = factory.SubFactory(UserFactory)
    designation = Designation.FIA
    issuing_body = "Institute and Faculty of Actuaries"
    membership_number = factory.Sequence(lambda n: f"IFOA-{n:06d}")
    valid_from = datetime.date(2015, 1, 1)
    valid_until = None


class AuditLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AuditLog

    action = AuditAction.ENGAGEMENT_UPDATE
    resource_type = "engagement"
    description = "Engagement updated"


class SessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Session

    user = factory.SubFactory(UserFactory)
    title = factory.Sequence(lambda n: f"Reserving questions {n}")


class ChatMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChatMessage

    session = factory.SubFactory(SessionFactory)
    role = MessageRole.USER
    content = "What tail factor did we use last year?"


class BackupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Backup

    name = factory.Sequence(lambda n: f"backup-{n}")
    backup_type = BackupType.FULL


class RecoveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Recovery

    name = factory.Sequence(lambda n: f"recovery-{n}")
    backup = factory.SubFactory(BackupFactory)


class ReviewPointFactory(factory.django.DjangoModelFactory):
    """An open review point (raised on an approval; answered and resolved via the services)."""

    class Meta:
        model = ReviewPoint

    approval = factory.SubFactory(ApprovalFactory)
    raised_by = factory.SubFactory(UserFactory)
    severity = ReviewPointSeverity.MAJOR
    text = "The tail factor is not supported by the development beyond 108 months."


class DataRelianceFactory(factory.django.DjangoModelFactory):
    """A reviewed client data reliance entry on a triangle artefact."""

    class Meta:
        model = DataReliance

    artefact = factory.SubFactory(ArtefactFactory)
    engagement = factory.LazyAttribute(lambda r: r.artefact.engagement)
    provider_type = DataProviderType.CLIENT
    provider_name = "Acme General Insurance plc"
    data_as_of = datetime.date(2025, 12, 31)
    checks_performed = "Reconciled to the general ledger."
    reviewed = True


class DisclosureChecklistFactory(factory.django.DjangoModelFactory):
    """A draft disclosure checklist (completed and frozen only via the services)."""

    class Meta:
        model = DisclosureChecklist

    engagement = factory.SubFactory(EngagementFactory)


class ReplayRecordFactory(factory.django.DjangoModelFactory):
    """A replay record that matched (real ones come from workflow_run_replay)."""

    class Meta:
        model = ReplayRecord

    run = factory.SubFactory(WorkflowRunFactory)
    matched = True
