"""Load demo data: a living back office for a first look at the admin.

Idempotent: people are matched by username, engagements by client code and name;
what exists already is left alone. Every state change goes through the services,
so the demo's history and audit trail look like real use.
"""

import datetime

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils import timezone

from approvals import services as approvals
from approvals.apps import ensure_certifiers_group
from approvals.choices import ApprovalType, Designation
from approvals.models import ProfessionalQualification
from approvals.services import CERTIFIERS_GROUP
from artefacts import services as artefacts
from artefacts.choices import ArtefactType
from conversations import services as conversations
from engagements import services as engagements
from engagements.choices import EngagementType, TeamRole
from engagements.models import Engagement
from records.transactions import audited_transaction
from workflows import services as workflows
from workflows.choices import WorkflowType

from ...reserving import load_reserving_demo

ACTUARIES_GROUP = "Actuaries"
DOMAIN_APPS = ("engagements", "workflows", "artefacts", "approvals", "audit", "conversations")
REFUSED_WITHOUT_DEBUG = (
    "load_demo creates well-known logins (admin/admin, …): refused while DEBUG is off. "
    "Pass --force if this really is a demonstration system."
)

# username, first name, last name, superuser, qualification (designation, body) or None
PEOPLE = (
    ("admin", "Ada", "Admin", True, None),
    (
        "alice",
        "Alice",
        "Fairweather",
        False,
        (Designation.FIA, "Institute and Faculty of Actuaries"),
    ),
    ("bob", "Bob", "Castellano", False, (Designation.FCAS, "Casualty Actuarial Society")),
    ("carol", "Carol", "Nguyen", False, None),
    ("dave", "Dave", "Okafor", False, None),
)

REPORT_MARKDOWN = b"""# IFRS 17 CSM roll-forward, Q4 2025

## Scope
Group of contracts: term assurance, cohort 2023, onerous test passed.

## Movements (EUR thousands)
| item | amount |
|---|---|
| Opening CSM | 48,210 |
| New business | 3,905 |
| Interest accretion | 1,122 |
| Changes in estimates | -860 |
| Release for services | -5,310 |
| Closing CSM | 47,067 |
"""

NO_CONFLICT = "I took no part in this work and have no interest in its outcome."

TREATY_CSV = b"""layer,attachment,limit,rate_on_line,expected_loss
1,5000000,5000000,0.085,310000
2,10000000,10000000,0.042,160000
3,20000000,20000000,0.018,55000
"""


class Command(BaseCommand):
    help = "Create demo users, engagements, runs, artefacts and approvals (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force",
            action="store_true",
            help="load even when DEBUG is off (never on a production system)",
        )

    def handle(self, *args, force=False, **options):
        if not settings.DEBUG and not force:
            raise CommandError(REFUSED_WITHOUT_DEBUG)
        self.created = []
        group = self.actuaries_group()
        people = {row[0]: self.person(*row, group=group) for row in PEOPLE}
        # Carol heads professional standards: she certifies her colleagues' qualifications.
        people["carol"].groups.add(self.certifiers_group())
        admin = people["admin"]
        self.qualifications(people, people["carol"])
        self.reserving_engagement(people)
        self.ifrs17_engagement(people)
        self.alm_engagement(people)
        self.reinsurance_engagement(people, admin)
        self.pricing_engagement(people)
        summary = ", ".join(self.created) if self.created else "nothing new (already loaded)"
        self.stdout.write(self.style.SUCCESS(f"Demo data: {summary}."))

    # --- people ---------------------------------------------------------------------------

    def actuaries_group(self):
        """Return the Actuaries group: staff who work in engagements (model permissions)."""
        group, _ = Group.objects.get_or_create(name=ACTUARIES_GROUP)
        models = [m for m in apps.get_models() if m._meta.app_label in DOMAIN_APPS]
        wanted = Q(content_type__app_label="auth", codename="view_user")
        for model in models:
            name = model._meta.model_name
            if model._meta.app_label == "audit" or model is ProfessionalQualification:
                # Qualifications are certified by the Certifiers, never by actuaries.
                wanted |= Q(content_type__app_label=model._meta.app_label, codename=f"view_{name}")
            else:
                codenames = [f"view_{name}", f"add_{name}", f"change_{name}"]
                wanted |= Q(content_type__app_label=model._meta.app_label, codename__in=codenames)
        group.permissions.add(*Permission.objects.filter(wanted))
        # Demo databases loaded before certifying became its own role gave actuaries these.
        group.permissions.remove(
            *Permission.objects.filter(
                content_type__app_label="approvals",
                codename__in=("add_professionalqualification", "change_professionalqualification"),
            )
        )
        return group

    def certifiers_group(self):
        """Return the Certifiers group (made by migrate; made here too if it is missing)."""
        ensure_certifiers_group()
        return Group.objects.get(name=CERTIFIERS_GROUP)

    def person(self, username, first_name, last_name, superuser, _qualification, *, group):
        """Return the demo user `username` (password = username), creating it if missing."""
        user, created = get_user_model().objects.get_or_create(
            username=username,
            defaults={
                "first_name": first_name,
                "last_name": last_name,
                "email": f"{username}@example.com",
                "is_staff": True,
                "is_superuser": superuser,
            },
        )
        if created:
            user.set_password(username)
            user.save(update_fields=["password"])
            self.created.append(f"user {username}")
        if not superuser:
            user.groups.add(group)
        return user

    def qualifications(self, people, certifier):
        """Record the qualified reviewers' designations, certified by Carol."""
        for username, *_rest, qualification in PEOPLE:
            if qualification is None:
                continue
            designation, body = qualification
            user = people[username]
            if ProfessionalQualification.objects.filter(
                user=user, designation=designation
            ).exists():
                continue
            approvals.qualification_create(
                user=user,
                designation=designation,
                issuing_body=body,
                membership_number=f"{designation}-{user.pk:05d}",
                valid_from=datetime.date(2012, 7, 1),
                actor=certifier,
            )

    # --- engagements ----------------------------------------------------------------------

    def engagement(self, *, client_code, name, lead, reviewer, team=(), **fields):
        """Return (engagement, created): open it with its team unless it already exists."""
        existing = Engagement.all_objects.filter(client_code=client_code, name=name).first()
        if existing is not None:
            return existing, False
        engagement = engagements.engagement_create(
            client_code=client_code,
            name=name,
            lead_actuary=lead,
            reviewer=reviewer,
            actor=lead,
            **fields,
        )
        for user, role in team:
            engagements.engagement_member_add(
                engagement=engagement, user=user, role=role, actor=lead
            )
        self.created.append(f"engagement {client_code}")
        return engagement, True

    @audited_transaction
    def reserving_engagement(self, people):
        """An active P&C reserving engagement with real chain-ladder results awaiting sign-off."""
        alice, bob, carol, dave = (people[n] for n in ("alice", "bob", "carol", "dave"))
        engagement, created = self.engagement(
            client_code="ACME",
            client_name="Acme General Insurance plc",
            name="FY2025 reserve review",
            engagement_type=EngagementType.RESERVING,
            description="Year-end reserve review of the motor and property books.",
            period_start=datetime.date(2025, 1, 1),
            period_end=datetime.date(2025, 12, 31),
            due_date=timezone.now().date() + datetime.timedelta(days=14),
            lead=alice,
            reviewer=bob,
            team=((carol, TeamRole.ACTUARY), (dave, TeamRole.OBSERVER)),
        )
        if not created:
            return
        engagements.engagement_activate(engagement=engagement, actor=alice)
        self.reserving_runs(engagement, alice=alice, bob=bob)
        session = conversations.session_create(
            actor=alice, engagement=engagement, title="Tail factor for the motor book"
        )
        for role, content in (
            ("user", "Which tail factor did we use for motor last year?"),
            (
                "assistant",
                "Last year's motor review used a tail factor of 1.005 on the paid triangle, "
                "supported by the incurred development beyond 108 months.",
            ),
            ("user", "Run the chain ladder with that tail on the RAA triangle, please."),
        ):
            # The assistant's turn stands for what the assistant itself recorded.
            conversations.chat_message_add(
                session=session,
                role=role,
                content=content,
                actor=alice,
                agent_runtime=role != "user",
            )

    def reserving_runs(self, engagement, *, alice, bob):
        """Add reserving runs with real results (two bundled triangles, chain ladder)."""
        load_reserving_demo(engagement=engagement, actor=alice, reviewer=bob)

    @audited_transaction
    def ifrs17_engagement(self, people):
        """An active IFRS 17 engagement: a report awaiting its designated reviewer, a failed run."""
        alice, bob, carol = people["alice"], people["bob"], people["carol"]
        engagement, created = self.engagement(
            client_code="NORDLIFE",
            client_name="Nordic Life Assurance AB",
            name="IFRS 17 CSM roll-forward Q4 2025",
            engagement_type=EngagementType.IFRS17,
            period_start=datetime.date(2025, 10, 1),
            period_end=datetime.date(2025, 12, 31),
            due_date=timezone.now().date() + datetime.timedelta(days=25),
            lead=bob,
            reviewer=alice,
            team=((carol, TeamRole.ACTUARY),),
        )
        if not created:
            return
        engagements.engagement_activate(engagement=engagement, actor=bob)
        report = artefacts.artefact_create(
            engagement=engagement,
            upload=ContentFile(REPORT_MARKDOWN, name="csm-roll-forward-q4-2025.md"),
            name="CSM roll-forward report Q4 2025",
            artefact_type=ArtefactType.MARKDOWN,
            actor=carol,
        )
        approvals.approval_request(
            approval_type=ApprovalType.REPORT_SIGN_OFF,
            artefact=report,
            designated_approver=alice,
            expires_at=timezone.now() + datetime.timedelta(days=10),
            request_notes="Please sign off the roll-forward before the audit committee.",
            actor=carol,
        )
        run = workflows.workflow_run_create(
            engagement=engagement,
            workflow_type=WorkflowType.COHORT_GROUPING,
            name="Cohort grouping 2023",
            period="2025-Q4",
            step_count=3,
            actor=carol,
        )
        workflows.workflow_run_start(run=run, actor=carol)
        workflows.workflow_run_fail(
            run=run,
            actor=carol,
            error_message="Policy extract has 412 contracts without an issue date.",
            error_details={"step": "load policies", "exception": "ValueError"},
        )
        workflows.workflow_run_create(
            engagement=engagement,
            workflow_type=WorkflowType.CSM_CALCULATION,
            name="CSM calculation Q4 2025",
            period="2025-Q4",
            actor=bob,
        )

    @audited_transaction
    def alm_engagement(self, people):
        """A draft ALM engagement still being scoped."""
        self.engagement(
            client_code="HELIX",
            client_name="Helix Pension Fund",
            name="ALM study 2026",
            engagement_type=EngagementType.ALM,
            description="Asset-liability study for the 2026 strategic asset allocation.",
            due_date=timezone.now().date() + datetime.timedelta(days=60),
            lead=people["carol"],
            reviewer=people["bob"],
        )

    @audited_transaction
    def reinsurance_engagement(self, people, admin):
        """A completed reinsurance engagement: approved analysis and final sign-off."""
        alice, bob = people["alice"], people["bob"]
        engagement, created = self.engagement(
            client_code="ORCA",
            client_name="Orca Re Brokers Ltd",
            name="Property cat treaty renewal 1/1/2026",
            engagement_type=EngagementType.REINSURANCE,
            period_start=datetime.date(2025, 1, 1),
            period_end=datetime.date(2025, 12, 31),
            due_date=timezone.now().date() - datetime.timedelta(days=5),
            lead=alice,
            reviewer=bob,
        )
        if not created:
            return
        engagements.engagement_activate(engagement=engagement, actor=alice)
        analysis = artefacts.artefact_create(
            engagement=engagement,
            upload=ContentFile(TREATY_CSV, name="layer-pricing.csv"),
            name="Layer pricing analysis",
            artefact_type=ArtefactType.MODEL_OUTPUT,
            actor=alice,
        )
        review = approvals.approval_request(
            approval_type=ApprovalType.ACTUARIAL_SIGN_OFF, artefact=analysis, actor=alice
        )
        approvals.approval_approve(
            approval=review,
            actor=bob,
            notes="Rates on line consistent with the market.",
            conflict_of_interest_statement=NO_CONFLICT,
        )
        # A final sign-off freezes the lead actuary's completed disclosure checklist.
        checklist = approvals.disclosure_checklist_prefill(engagement=engagement, actor=alice)
        approvals.disclosure_checklist_complete(checklist=checklist, actor=alice)
        final = approvals.approval_request(
            approval_type=ApprovalType.FINAL_SIGN_OFF, engagement=engagement, actor=alice
        )
        approvals.approval_approve(
            approval=final,
            actor=bob,
            notes="Engagement signed off.",
            conflict_of_interest_statement=NO_CONFLICT,
        )
        engagements.engagement_complete(engagement=engagement, actor=alice)

    @audited_transaction
    def pricing_engagement(self, people):
        """A cancelled pricing engagement (the client withdrew)."""
        engagement, created = self.engagement(
            client_code="PINE",
            client_name="Pine Mutual",
            name="Household pricing refresh",
            engagement_type=EngagementType.PRICING,
            lead=people["bob"],
            reviewer=people["alice"],
        )
        if created:
            engagements.engagement_cancel(engagement=engagement, actor=people["bob"])
