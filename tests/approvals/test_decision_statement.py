"""Every decision records a conflict-of-interest statement: the services have no fallback.

`approval_approve` and `approval_reject` take the statement as a required keyword (no
"not asked" default any more); a blank statement is refused with the services' message
and changes nothing.
"""

import inspect

import pytest

from approvals.choices import ApprovalType
from approvals.errors import COI_STATEMENT_REQUIRED
from approvals.services import approval_approve, approval_reject, approval_request
from records.exceptions import InvalidInput
from tests.factories.states import NO_CONFLICT, artefact_in, database_state

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("service", [approval_approve, approval_reject])
def test_the_statement_is_a_required_keyword(service):
    parameter = inspect.signature(service).parameters["conflict_of_interest_statement"]
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
    assert parameter.default is inspect.Parameter.empty


@pytest.fixture
def review(engagement, actuary):
    artefact = artefact_in(engagement, actor=actuary)
    return approval_request(
        approval_type=ApprovalType.ARTEFACT_REVIEW, artefact=artefact, actor=actuary
    )


def _decide(move, approval, actor, statement):
    if move == "approve":
        return approval_approve(
            approval=approval, actor=actor, conflict_of_interest_statement=statement
        )
    return approval_reject(
        approval=approval, actor=actor, reason="No", conflict_of_interest_statement=statement
    )


@pytest.mark.parametrize("move", ["approve", "reject"])
def test_omitting_the_statement_is_a_type_error(review, reviewer, move):
    with pytest.raises(TypeError, match="conflict_of_interest_statement"):
        if move == "approve":
            approval_approve(approval=review, actor=reviewer)
        else:
            approval_reject(approval=review, actor=reviewer, reason="No")


@pytest.mark.parametrize("move", ["approve", "reject"])
@pytest.mark.parametrize("statement", ["", "   ", None])
def test_a_blank_statement_is_refused_with_the_message(review, reviewer, move, statement):
    before = database_state()
    expected = COI_STATEMENT_REQUIRED.format(user=reviewer, approval=review)
    with pytest.raises(InvalidInput, match="must record a conflict-of-interest statement") as error:
        _decide(move, review, reviewer, statement)
    assert error.value.message == expected
    assert error.value.field == "conflict_of_interest_statement"
    assert database_state() == before


@pytest.mark.parametrize("move", ["approve", "reject"])
def test_the_statement_is_recorded_trimmed(review, reviewer, move):
    decided = _decide(move, review, reviewer, f"  {NO_CONFLICT}\n")
    assert decided.conflict_of_interest_statement == NO_CONFLICT
