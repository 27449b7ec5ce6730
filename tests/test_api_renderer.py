"""The API's JSON renderer (records.api.renderers): orjson's speed, DRF's bytes.

Every case is rendered by both renderers: where DRF writes JSON, ours writes the
same bytes (datetimes with milliseconds and Z, decimals, lazy text, U+2028 escaped),
and falls back to DRF's own renderer where orjson would write something else.
"""

import datetime
import decimal
import uuid

import pytest
from django.utils.translation import gettext_lazy
from rest_framework import renderers

from records.api.renderers import JSONRenderer
from tests.api_fixtures import API, superuser_client
from tests.factories import EngagementFactory

__all__ = ("superuser_client",)

MOMENT = datetime.datetime(2026, 12, 5, 6, 33, 1, 123456, tzinfo=datetime.UTC)
CASES = {
    "a page": {
        "count": 2,
        "next": None,
        "results": [{"id": str(uuid.uuid4()), "name": "Motor 2026", "ibnr": 52135.23}],
    },
    "text": {"plain": "a", "accents": "Zürich – Ωmega", "quote": 'say "hi"\n\t\\'},
    "separators": {"line": "one\u2028two", "paragraph": "one\u2029two"},
    "python values": {
        "when": MOMENT,
        "day": datetime.date(2026, 12, 5),
        "at": datetime.time(6, 33, 1, 500000),
        "amount": decimal.Decimal("12.50"),
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "lazy": gettext_lazy("Approved"),
        "set": {3},
        "tuple": (1, 2),
    },
    "numbers": {"int": -(2**63), "float": 0.1, "big float": 1.5e300, "bool": True, "none": None},
    "a list": [1, "two", {"three": [3]}],
    "an integer beyond 64 bits": {"big": 2**70},
    "keys that are not text": {1: "one", 2: "two"},
}


@pytest.mark.parametrize("name", CASES)
def test_the_bytes_are_drfs(name):
    data = CASES[name]
    assert JSONRenderer().render(data) == renderers.JSONRenderer().render(data)


def test_an_indented_answer_is_drfs():
    data = CASES["a page"]
    accepted = "application/json; indent=2"
    ours = JSONRenderer().render(data, accepted, {})
    assert ours == renderers.JSONRenderer().render(data, accepted, {})
    assert b'\n  "count": 2' in ours


def test_nothing_is_an_empty_body():
    assert JSONRenderer().render(None) == b""


def test_a_number_json_cannot_hold_is_null_not_a_server_error():
    assert JSONRenderer().render({"x": float("nan"), "y": float("inf")}) == b'{"x":null,"y":null}'
    with pytest.raises(ValueError, match="Out of range float values"):
        renderers.JSONRenderer().render({"x": float("nan")})


@pytest.mark.django_db
def test_the_api_answers_with_it(superuser_client):
    engagement = EngagementFactory(name="Motor – “2026”\u2028")
    response = superuser_client.get(f"{API}/engagements/{engagement.pk}/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert isinstance(response.accepted_renderer, JSONRenderer)
    assert response.content == renderers.JSONRenderer().render(response.data)
    assert response.json()["name"] == "Motor – “2026”\u2028"


@pytest.mark.django_db
def test_the_browsable_api_still_renders(superuser_client):
    response = superuser_client.get(f"{API}/engagements/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"Engagement" in response.content
