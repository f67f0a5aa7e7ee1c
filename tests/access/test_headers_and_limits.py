"""Security headers on product answers (not on collection), token buckets per API token and per write key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from marketloop.api.app import create_app
from marketloop.app.container import Container
from marketloop.app.settings import RateLimitSettings, Settings
from marketloop.core.errors import MarketloopError
from marketloop.security.ratelimit import RateLimiter
from marketloop.testing.access import grant
from marketloop.testing.clock import FrozenClock

SLOW = RateLimitSettings(token_per_second=0.001, token_burst=2, write_key_per_second=0.001, write_key_burst=2)


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    opened = Container.open(Settings(data_dir=tmp_path / "data", rate_limits=SLOW))
    yield opened
    opened.close()


def test_token_bucket_refills_at_its_rate() -> None:
    clock = FrozenClock()
    limiter = RateLimiter(2.0, 3, clock.monotonic)
    assert [limiter.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("k") == pytest.approx(0.5)
    assert limiter.take("other") == 0.0
    clock.advance(timedelta(seconds=0.5))
    assert limiter.take("k") == 0.0
    clock.advance(timedelta(hours=1))
    assert [limiter.take("k") for _ in range(4)][-1] > 0  # refilled to the burst, not beyond
    with pytest.raises(MarketloopError) as limited:
        limiter.check("k", "API token")
    assert limited.value.headers["Retry-After"] == "1"
    assert RateLimiter(0, 1, clock.monotonic).take("k") == 0.0  # rate 0: off


def test_product_answers_carry_security_headers_errors_too(container: Container) -> None:
    client = TestClient(create_app(container), base_url="https://testserver")
    for response in (
        client.get("/v1/segments", headers=grant(container.access, "analyst")),
        client.get("/v1/segments"),  # 401 problem
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert response.headers["strict-transport-security"].startswith("max-age=")
    plain = TestClient(create_app(container)).get("/v1/segments")
    assert "strict-transport-security" not in plain.headers  # HSTS only over HTTPS
    docs = client.get("/docs")
    assert docs.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in docs.headers  # Swagger UI loads its scripts


def test_collection_answers_stay_bare(container: Container) -> None:
    client = TestClient(create_app(container), base_url="https://testserver")
    _, key = container.sources.create("app")
    response = client.post("/v1/track", json={"event": "login", "userId": "u1"}, auth=(key, ""))
    assert response.status_code == 200
    assert "x-frame-options" not in response.headers
    assert "content-security-policy" not in response.headers


def test_an_api_token_is_limited_to_its_bucket(container: Container) -> None:
    client = TestClient(create_app(container), base_url="https://testserver")
    fast, other = grant(container.access, "analyst"), grant(container.access, "analyst")
    assert [client.get("/v1/segments", headers=fast).status_code for _ in range(2)] == [200, 200]
    limited = client.get("/v1/segments", headers=fast)
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    assert int(limited.headers["retry-after"]) >= 1
    assert client.get("/v1/segments", headers=other).status_code == 200  # another token has its own bucket


def test_a_write_key_is_limited_to_its_bucket(container: Container) -> None:
    client = TestClient(create_app(container))
    _, key = container.sources.create("noisy")
    _, calm = container.sources.create("calm")
    codes = [client.post("/v1/track", json={"event": "e", "userId": "u"}, auth=(key, "")).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    limited = client.post("/v1/batch", json={"batch": [{"type": "track", "event": "e", "userId": "u"}]}, auth=(key, ""))
    assert limited.status_code == 429
    assert limited.json()["type"].endswith("/rate-limited")
    assert client.post("/v1/track", json={"event": "e", "userId": "u"}, auth=(calm, "")).status_code == 200
