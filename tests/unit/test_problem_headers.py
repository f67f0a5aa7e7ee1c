"""HTTP errors keep their headers when they become problem+json (405 → Allow)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from marketloop.api import problem


def test_method_not_allowed_says_what_is_allowed() -> None:
    app = FastAPI()
    problem.install(app)

    @app.get("/things")
    async def things() -> dict[str, str]:
        return {}

    answer = TestClient(app).delete("/things")
    assert answer.status_code == 405
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["allow"] == "GET"
