"""The tools' JSON schemas against what the services accept: same names, choices, contract.

Each tool that writes hands its arguments to a REST API serializer and a service; its
schema must name only fields that serializer writes, offer exactly the choices the
models and the reserving engine know, and accept every example of the reserving
contract (docs/actuaries/reserving-methods.md) unchanged.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import jsonschema
import pytest
from django.contrib.auth.models import Permission

from approvals.api.serializers import (
    ApprovalSerializer,
    ReviewPointRespondSerializer,
    ReviewPointSerializer,
)
from approvals.choices import ApprovalType, ReviewPointSeverity
from artefacts.api.serializers import ArtefactUploadSerializer
from artefacts.choices import ArtefactType
from conversations.mcp.server import tool_definitions
from conversations.mcp.tools import TOOLS
from conversations.mcp.tools.approvals import APPROVAL_ARGUMENTS, POINT_ARGUMENTS
from conversations.mcp.tools.artefacts import UPLOAD_ARGUMENTS
from conversations.mcp.tools.runs import RUN_ARGUMENTS, ReservingInputs
from workflows.api.serializers import WorkflowRunSerializer
from workflows.choices import WorkflowType
from workflows.implementations.reserving_inputs import RESERVE_PARAMS
from workflows.reserving import LAYOUTS, MEASURES
from workflows.reserving.development import AVERAGES
from workflows.reserving.options import METHODS

DOCS = Path(__file__).resolve().parents[3] / "docs" / "actuaries" / "reserving-methods.md"
EXAMPLE = re.compile(r"<!-- example: reserve-run -->\n```json\n(.*?)\n```", re.DOTALL)
# Tool arguments that are the tool's own, not a serializer field.
TOOL_OWN = {"queue", "wait_seconds", "file_name", "csv_text", "content_base64"}


def properties(tool_name: str) -> dict:
    return TOOLS[tool_name].input_schema()["properties"]


def writable(serializer_class) -> set[str]:
    return {name for name, field in serializer_class().fields.items() if not field.read_only}


def enum_of(schema: dict) -> set:
    """Return the choices a property schema offers (through anyOf with null too)."""
    for option in [schema, *schema.get("anyOf", [])]:
        if "enum" in option:
            return set(option["enum"])
        if "$ref" in option:
            return set()
    raise AssertionError(f"no enum in {schema}")


def test_every_tool_has_a_valid_closed_object_schema_and_a_description():
    for tool in tool_definitions():
        schema = tool.input_schema
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["type"] == "object", tool.name
        assert schema.get("additionalProperties") is False, tool.name
        assert len(tool.description) > 40, tool.name


def test_every_permission_a_tool_needs_exists(db):
    for tool in TOOLS.values():
        for permission in tool.permissions:
            app_label, codename = permission.split(".")
            assert Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).exists(), permission


@pytest.mark.parametrize(
    ("tool_name", "serializer_class", "names"),
    [
        ("create_reserving_run", WorkflowRunSerializer, RUN_ARGUMENTS),
        ("upload_triangle", ArtefactUploadSerializer, UPLOAD_ARGUMENTS),
        ("request_approval", ApprovalSerializer, APPROVAL_ARGUMENTS),
        ("raise_review_point", ReviewPointSerializer, POINT_ARGUMENTS),
        ("respond_to_review_point", ReviewPointRespondSerializer, {}),
    ],
)
def test_the_arguments_are_fields_the_rest_api_serializer_writes(
    db, tool_name, serializer_class, names
):
    arguments = set(properties(tool_name)) - TOOL_OWN - {"review_point_id"}
    fields = {argument: field for field, argument in names.items()}
    assert {fields.get(argument, argument) for argument in arguments} <= writable(serializer_class)


def test_the_reserving_inputs_are_the_reserving_contract():
    schema = ReservingInputs.model_json_schema()
    assert set(schema["properties"]) == set(RESERVE_PARAMS)
    assert set(schema["required"]) == {"triangle_artefact", "cumulative", "measure"}
    assert enum_of(schema["properties"]["method"]) == set(METHODS)
    assert enum_of(schema["properties"]["average"]) == set(AVERAGES)
    assert enum_of(schema["properties"]["layout"]) == set(LAYOUTS)
    assert enum_of(schema["properties"]["measure"]) == set(MEASURES)


def test_the_choices_are_the_models_choices():
    run = properties("create_reserving_run")
    assert enum_of(run["workflow_type"]) == {
        WorkflowType.RESERVE_CALCULATION,
        WorkflowType.IBNR_ESTIMATION,
    }
    assert enum_of(properties("upload_triangle")["artefact_type"]) <= set(ArtefactType.values)
    approval_types = TOOLS["request_approval"].input_schema()["$defs"]["ApprovalType"]
    assert set(approval_types["enum"]) == set(ApprovalType.values)
    severities = TOOLS["raise_review_point"].input_schema()["$defs"]["ReviewPointSeverity"]
    assert set(severities["enum"]) == set(ReviewPointSeverity.values)


def doc_examples() -> list[dict]:
    examples = []
    for text in EXAMPLE.findall(DOCS.read_text()):
        for placeholder in ("{engagement}", "{triangle}", "{exposure}", "{prior_run}"):
            text = text.replace(placeholder, str(uuid.uuid4()))
        examples.append(json.loads(text))
    return examples


def test_every_example_of_the_reserving_contract_passes_unchanged():
    examples = doc_examples()
    assert len(examples) >= 15
    for example in examples:
        params = example["input_params"]
        parsed = ReservingInputs.model_validate(params)
        assert parsed.as_input_params() == params, example["name"]
        tool_arguments = {
            "engagement_id": example["engagement"],
            "name": example["name"],
            "workflow_type": example["workflow_type"],
            "input_params": params,
        }
        TOOLS["create_reserving_run"].validate(tool_arguments)
