"""Every route of the app declares a permission, or is listed as public with a reason; and the app enforces it.

This walks `create_app(...).routes`, so a route added without `require(...)`
fails here, whoever adds it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from marketloop.access.permissions import PERMISSIONS
from marketloop.api.app import create_app
from marketloop.api.auth import PUBLIC_ROUTES, RouteDeclaration, declarations
from marketloop.app.container import Container
from marketloop.app.settings import RateLimitSettings, Settings
from marketloop.testing.access import grant


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    # the walk sends one token more requests than its burst allows: rate limits are another test's subject
    unlimited = RateLimitSettings(token_per_second=0, write_key_per_second=0)
    opened = Container.open(Settings(data_dir=tmp_path_factory.mktemp("routes") / "data", rate_limits=unlimited))
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def app(container: Container) -> FastAPI:
    return create_app(container)


def _protected(app: FastAPI) -> list[RouteDeclaration]:
    return [row for row in declarations(app) if row.public is None]


def _url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def test_every_route_declares_a_permission_or_why_it_is_public(app: FastAPI) -> None:
    rows = declarations(app)
    assert len(rows) > 20
    undeclared = [f"{row.method} {row.path}" for row in rows if not row.permissions and row.public is None]
    assert undeclared == [], f"routes without require(...) or a PUBLIC_ROUTES entry: {undeclared}"
    both = [f"{row.method} {row.path}" for row in rows if row.permissions and row.public is not None]
    assert both == [], f"public routes that also require a permission: {both}"
    for row in rows:
        assert set(row.permissions) <= {*PERMISSIONS, "(signed in)"}


def test_every_public_declaration_names_a_real_route(app: FastAPI) -> None:
    present = {(row.method, row.path) for row in declarations(app)}
    stale = [f"{p.method} {p.path}" for p in PUBLIC_ROUTES if (p.method, p.path) not in present]
    assert stale == []


def test_every_protected_route_answers_401_problem_without_a_credential(app: FastAPI) -> None:
    client = TestClient(app, base_url="https://testserver")
    for row in _protected(app):
        response = client.request(row.method, _url(row.path))
        assert response.status_code == 401, f"{row.method} {row.path}: {response.status_code}"
        assert response.headers["content-type"] == "application/problem+json"


def test_every_permission_route_answers_403_problem_to_a_role_without_it(app: FastAPI, container: Container) -> None:
    used = {p for row in declarations(app) for p in row.permissions}
    unused = sorted(set(PERMISSIONS) - used)
    assert unused, "every permission is used by some route; pick another way to make a role without them"
    container.access.roles.create("nothing_here", [unused[0]])
    client = TestClient(app, base_url="https://testserver", headers=grant(container.access, "nothing_here"))
    for row in _protected(app):
        if row.permissions == ("(signed in)",):
            continue
        response = client.request(row.method, _url(row.path))
        assert response.status_code == 403, f"{row.method} {row.path}: {response.status_code}"
        assert response.json()["type"].endswith("/auth.forbidden")


def test_collection_routes_stay_outside_user_authentication(app: FastAPI) -> None:
    response = TestClient(app).post("/v1/track", json={"event": "x", "userId": "u"})
    assert response.status_code == 401
    assert "write key" in response.json()["title"]
    assert "Bearer" not in response.headers.get("www-authenticate", "")
