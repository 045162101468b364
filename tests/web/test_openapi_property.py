"""Property-based run over the OpenAPI document (schemathesis strategies driven by hypothesis):
for every operation, generated requests never get a 5xx and every response matches the document."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402

from lnlens_core.web.openapi import openapi_document  # noqa: E402
from lnlens_core.web.views import ROUTES  # noqa: E402

SCHEMA = schemathesis.openapi.from_dict(openapi_document())


@pytest.mark.parametrize("path", sorted(ROUTES))
def test_api_conforms_to_its_openapi_document(web, path):
    client, token = web[0], web[1]
    SCHEMA.app = client.app
    operation = SCHEMA["/" + path.lstrip("/")]["GET"]
    seen = set()

    @given(case=operation.as_strategy())
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case):
        response = case.call_and_validate(headers={"Authorization": f"Bearer {token}"})
        assert response.status_code < 500
        seen.add(response.status_code)

    check()
    assert seen <= {200, 400, 409}
