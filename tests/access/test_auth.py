"""`require(...)`: bearer tokens, session cookies with CSRF, 401 / 403 problems, the audit actor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from marketloop.access.principal import Principal
from marketloop.api.app import create_app
from marketloop.api.auth import CSRF_COOKIE, SESSION_COOKIE, require
from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.testing.access import grant

PASSWORD = "a long enough password"


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    opened = Container.open(Settings(data_dir=tmp_path / "data"))
    yield opened
    opened.close()


@pytest.fixture
def app(container: Container) -> FastAPI:
    app = create_app(container)
    probe = APIRouter(prefix="/v1/probe", dependencies=[require("tags:read")])

    @probe.get("")
    def read(user: Annotated[Principal, require("tags:read")]) -> dict[str, str]:
        return {"user": user.username, "scope": user.scope.describe()}

    @probe.post("")
    def write(user: Annotated[Principal, require("tags:write")]) -> dict[str, str]:
        container.audit.record("probe.write", "probe:1")
        return {"user": user.username}

    app.include_router(probe)
    return app


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app, base_url="https://testserver")


def test_no_credential_is_a_401_problem_with_a_bearer_challenge(client: TestClient) -> None:
    response = client.get("/v1/probe")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["type"].endswith("/auth.unauthenticated")
    assert client.get("/v1/probe", headers={"Authorization": "Bearer mlt_nope"}).status_code == 401
    assert client.get("/v1/probe", headers={"Authorization": "Basic eDp5"}).status_code == 401


def test_a_token_without_the_permission_is_a_403_problem(client: TestClient, container: Container) -> None:
    container.access.roles.create("log_reader", ["audit:read"])
    response = client.get("/v1/probe", headers=grant(container.access, "log_reader"))
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/auth.forbidden")
    assert response.json()["detail"] == "needs tags:read; your roles: log_reader"


def test_a_token_with_the_permission_passes_and_names_the_actor(client: TestClient, container: Container) -> None:
    headers = grant(container.access, "marketer", username="mia")
    assert client.get("/v1/probe", headers=headers).json() == {"user": "mia", "scope": "all customers"}
    assert client.post("/v1/probe", headers=headers).status_code == 200
    entry = container.audit.entries(action="probe.write")[0]
    assert entry.actor.startswith("user:mia/token:")


def test_sessions_need_the_csrf_token_on_unsafe_methods(client: TestClient, container: Container) -> None:
    container.access.users.create("sam", roles=["marketer"], password=PASSWORD)
    login = container.access.login("sam", PASSWORD, client="testclient")
    client.cookies.set(SESSION_COOKIE, login.session_id)
    assert client.get("/v1/probe").json()["user"] == "sam"
    assert client.post("/v1/probe").status_code == 403
    client.cookies.set(CSRF_COOKIE, login.csrf_token)
    assert client.post("/v1/probe", headers={"X-CSRF-Token": "forged"}).status_code == 403
    response = client.post("/v1/probe", headers={"X-CSRF-Token": login.csrf_token})
    assert response.status_code == 200
    assert container.audit.entries(action="probe.write")[0].actor == "user:sam"


def test_an_ended_session_is_a_401(client: TestClient, container: Container) -> None:
    container.access.users.create("tom", roles=["marketer"], password=PASSWORD)
    login = container.access.login("tom", PASSWORD, client="testclient")
    client.cookies.set(SESSION_COOKIE, login.session_id)
    container.access.users.set_enabled("tom", False)
    assert client.get("/v1/probe").status_code == 401


def test_unknown_permissions_fail_at_import() -> None:
    with pytest.raises(ValueError, match="permission catalog"):
        require("tags:fly")
