"""The schema of the JSON approvals keep: the approver's qualifications, frozen disclosures.

Shapes (records.api.shapes) of what `ProfessionalQualification.snapshot`,
`DisclosureChecklist.snapshot` and `approvals.disclosures` write; the tests check real
decisions and sign-offs against them (tests/test_api_result_schemas.py).
"""

from rest_framework import serializers

from artefacts.api.shapes import RelianceSnapshotShape
from records.api.shapes import Shape
from workflows.choices import WorkflowType

from ..choices import Designation


class QualificationSnapshotShape(Shape):
    """A professional qualification as recorded with a decision."""

    designation = serializers.ChoiceField(choices=Designation.choices)
    issuing_body = serializers.CharField()
    membership_number = serializers.CharField(allow_blank=True)
    valid_from = serializers.DateField()
    valid_until = serializers.DateField(allow_null=True)


class ApproverQualificationsShape(Shape):
    """The decider's qualifications that counted, as they stood when they decided.

    Empty until the approval is decided. Only qualifications valid on `checked_on` and
    recorded before the approval was requested count; a sign-off needs one.
    """

    checked_on = serializers.DateField(required=False)
    qualifications = QualificationSnapshotShape(many=True, required=False)


class PersonShape(Shape):
    """A user as a frozen record names them."""

    id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.CharField(help_text="Full name, else the username.")


class EngagementReferenceShape(Shape):
    """An engagement as a frozen record names it."""

    id = serializers.UUIDField()
    name = serializers.CharField()


class KeyTotalsShape(Shape):
    """The totals of an approved reserving run (null where its method has none)."""

    ibnr = serializers.FloatField(allow_null=True)
    ultimate = serializers.FloatField(allow_null=True)
    latest = serializers.FloatField(allow_null=True)
    mack_se = serializers.FloatField(allow_null=True)


class KeyAssumptionsShape(Shape):
    """The assumptions of an approved reserving run."""

    average = serializers.CharField(allow_null=True)
    tail_factor = serializers.FloatField(allow_null=True)


class KeyResultsShape(Shape):
    """An engagement's latest approved reserving run of one type and measure."""

    run_id = serializers.UUIDField()
    run = serializers.CharField(help_text="The run's name.")
    workflow_type = serializers.ChoiceField(choices=WorkflowType.choices)
    measure = serializers.CharField()
    totals = KeyTotalsShape()
    assumptions = KeyAssumptionsShape()


class KeyResultsChangeShape(Shape):
    """One type and measure's key results in the previous engagement and this one."""

    key = serializers.CharField(help_text='"<workflow type>:<measure>".')
    previous = KeyResultsShape(allow_null=True)
    current = KeyResultsShape(allow_null=True)


class MaterialChangesComparisonShape(Shape):
    """The key results of the previous engagement and this one, as pre-filled.

    Empty when there is no previous engagement of the same client and type.
    """

    previous_engagement = EngagementReferenceShape(required=False)
    results = KeyResultsChangeShape(many=True, required=False)


class DisclosuresShape(Shape):
    """The disclosure checklist (ASOP 41) a final sign-off froze when it was requested.

    Empty for the other approval types.
    """

    checklist_id = serializers.UUIDField(required=False)
    responsible_actuary = PersonShape(required=False, allow_null=True)
    information_date = serializers.DateField(required=False, allow_null=True)
    reliances = RelianceSnapshotShape(many=True, required=False)
    previous_engagement = EngagementReferenceShape(required=False, allow_null=True)
    comparison = MaterialChangesComparisonShape(required=False)
    material_changes = serializers.CharField(required=False, allow_blank=True)
    other_disclosures = serializers.CharField(required=False, allow_blank=True)
    completed_by = serializers.CharField(
        required=False, allow_null=True, help_text="The username of who completed it."
    )
    completed_at = serializers.DateTimeField(required=False, allow_null=True)
