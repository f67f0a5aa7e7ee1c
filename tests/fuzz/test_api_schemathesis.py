"""Schemathesis against the OpenAPI schema: generated requests to every operation, as an admin, get no 5xx.

Bounded for CI: a few examples per operation, derandomised, no shrinking.
Rate limits are off so the admin token is never throttled. Requests the
schema allows but the domain refuses must be 4xx problems, never 5xx. The
requests go through Starlette's TestClient, without the app's lifespan.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings

from marketloop.api.app import create_app
from marketloop.app.container import Container
from marketloop.app.settings import RateLimitSettings, Settings
from marketloop.testing.access import grant

UNLIMITED = RateLimitSettings(token_per_second=0, write_key_per_second=0)
EXAMPLES_PER_OPERATION = 3
# Calls that would end the fuzzing admin's own access; they are still sent, without a credential (401).
ANONYMOUS = ("/v1/auth/logout", "/v1/users/{username}", "/v1/tokens/{token_id}")


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    opened = Container.open(Settings(data_dir=tmp_path_factory.mktemp("fuzz") / "data", rate_limits=UNLIMITED))
    yield opened
    opened.close()


def _request(client: TestClient, case: schemathesis.Case, headers: dict[str, str]) -> Any:
    kwargs = case.as_transport_kwargs(base_url="https://testserver", headers=headers)
    body = kwargs.pop("data", None)
    if body is not None and "json" not in kwargs:
        kwargs["content"] = body if isinstance(body, bytes | str) else None
        kwargs["data"] = body if isinstance(body, dict) else None
    cookies = kwargs.pop("cookies", None)
    if cookies:
        cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
        kwargs["headers"] = {**(kwargs.get("headers") or {}), "cookie": cookie}
    kwargs.pop("timeout", None)
    kwargs.pop("allow_redirects", None)
    return client.request(**{k: v for k, v in kwargs.items() if v is not None})


def _fuzz(operation: Any, send: Any, failures: list[str], statuses: Counter[int]) -> None:
    """A few generated requests to one operation; each 5xx answer is added to `failures`."""

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def call(case: schemathesis.Case) -> None:
        response = send(case)
        statuses[response.status_code] += 1
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}")

    call()


def test_no_operation_answers_5xx(container: Container, tmp_path: Path) -> None:
    app = create_app(container)
    admin = grant(container.access, "admin", username="fuzz-admin")
    client = TestClient(app, base_url="https://testserver", raise_server_exceptions=False)
    schema = schemathesis.openapi.from_dict(app.openapi())
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30

    for operation in operations:
        headers = {} if operation.path.startswith(ANONYMOUS) else admin
        _fuzz(operation, lambda case, headers=headers: _request(client, case, headers), failures, statuses)
    assert failures == [], "\n".join(failures)
    ok = sum(count for status, count in statuses.items() if status < 300)
    assert ok > len(operations) // 3, f"too few successful calls to mean anything: {dict(statuses)}"
