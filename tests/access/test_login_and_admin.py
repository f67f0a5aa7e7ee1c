"""Login API (cookies, CSRF, throttling), the admin API for users, roles and tokens, and the CLI for them."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from marketloop.api.app import create_app
from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.testing.access import grant
from marketloop.testing.cli import run_cli

PASSWORD = "correct horse battery staple"


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    opened = Container.open(Settings(data_dir=tmp_path / "data"))
    yield opened
    opened.close()


@pytest.fixture
def client(container: Container) -> TestClient:
    return TestClient(create_app(container), base_url="https://testserver")


def test_login_sets_strict_cookies_and_me_logout_need_the_session(client: TestClient, container: Container) -> None:
    container.access.users.create("lily", roles=["marketer"], password=PASSWORD, branch_code="SH")
    response = client.post("/v1/auth/login", json={"username": "lily", "password": PASSWORD})
    assert response.status_code == 200, response.text
    cookies = response.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("ml_session="))
    csrf = next(c for c in cookies if c.startswith("ml_csrf="))
    for flag in ("Secure", "HttpOnly", "SameSite=strict", "Path=/"):
        assert flag.lower() in session.lower()
    assert "httponly" not in csrf.lower()
    assert "samesite=strict" in csrf.lower()
    token = response.json()["csrf_token"]
    me = client.get("/v1/auth/me").json()
    assert me["username"] == "lily"
    assert me["via"] == "session"
    assert "segments:write" in me["permissions"]
    assert client.post("/v1/auth/logout").status_code == 403  # no CSRF header
    assert client.post("/v1/auth/logout", headers={"X-CSRF-Token": token}).status_code == 204
    assert client.get("/v1/auth/me").status_code == 401
    actions = [e.action for e in reversed(container.audit.entries(action="auth."))]
    assert actions == ["auth.login", "auth.logout"]


def test_wrong_passwords_are_401_then_locked_out_403(client: TestClient, container: Container) -> None:
    container.access.users.create("mark", roles=["analyst"], password=PASSWORD)
    for _ in range(5):
        wrong = client.post("/v1/auth/login", json={"username": "mark", "password": "nope nope nope"})
        assert wrong.status_code == 401
        assert wrong.headers["content-type"] == "application/problem+json"
    locked = client.post("/v1/auth/login", json={"username": "mark", "password": PASSWORD})
    assert locked.status_code == 403
    assert locked.json()["type"].endswith("/access.locked-out")
    assert len(container.audit.entries(action="auth.login-failed")) == 5
    assert client.post("/v1/auth/login", json={"username": "mark"}).status_code == 422


def test_admin_api_manages_users_roles_and_tokens(client: TestClient, container: Container) -> None:
    admin = grant(container.access, "admin")
    created = client.post(
        "/v1/users", headers=admin, json={"username": "svc-crm", "roles": ["analyst"], "display_name": "CRM sync"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["can_log_in"] is False
    assert client.post("/v1/users", headers=admin, json={"username": "x-1", "roles": ["wizard"]}).status_code == 400
    role = client.post("/v1/roles", headers=admin, json={"name": "tag_reader", "permissions": ["tags:read"]})
    assert role.status_code == 201
    changed = client.put("/v1/users/svc-crm/roles", headers=admin, json={"roles": ["tag_reader"]})
    assert changed.json()["roles"] == ["tag_reader"]
    issued = client.post("/v1/tokens", headers=admin, json={"username": "svc-crm", "name": "nightly"})
    assert issued.status_code == 201
    secret, token_id = issued.json()["token"], issued.json()["id"]
    listed = client.get("/v1/tokens", headers=admin, params={"username": "svc-crm"}).json()
    assert [t["id"] for t in listed] == [token_id]
    assert secret not in json.dumps(listed)
    service = {"Authorization": f"Bearer {secret}"}
    assert client.get("/v1/auth/me", headers=service).json()["permissions"] == ["tags:read"]
    assert client.get("/v1/users", headers=service).status_code == 403
    assert client.delete(f"/v1/tokens/{token_id}", headers=admin).json()["revoked_at"] is not None
    assert client.get("/v1/auth/me", headers=service).status_code == 401
    actions = {e.action for e in container.audit.entries()}
    assert {"user.create", "role.create", "user.set-roles", "token.create", "token.revoke"} <= actions


def test_cli_users_tokens_and_roles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_path / "data")

    def cli(*args: str) -> tuple[int, str, str]:
        return run_cli(monkeypatch, capsys, *args, "--data-dir", data)

    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    code, out, err = cli("users", "create", "nina", "--role", "marketer", "--password-stdin", "--json")
    assert code == 0, err
    assert json.loads(out)["can_log_in"] is True
    code, out, err = cli("users", "create", "svc", "-r", "relationship_manager", "--service")
    assert code == 2
    assert "rm_id" in err
    assert cli("users", "create", "svc", "-r", "relationship_manager", "--service", "--rm-id", "R1")[0] == 0
    code, out, _ = cli("tokens", "create", "svc", "--name", "crm", "--expires-days", "30", "--json")
    token = json.loads(out)
    assert token["token"].startswith("mlt_")
    assert token["expires_at"] is not None
    code, out, _ = cli("tokens", "list", "--json")
    assert [t["user"] for t in json.loads(out)] == ["svc"]
    assert token["token"] not in out
    assert cli("tokens", "revoke", token["id"])[0] == 0
    assert cli("tokens", "revoke", "tok_nope")[0] == 3
    assert cli("users", "set-roles", "nina", "-r", "analyst", "-r", "approver")[0] == 0
    assert cli("users", "disable", "nina")[0] == 0
    code, out, _ = cli("users", "list", "--json")
    nina = next(u for u in json.loads(out) if u["username"] == "nina")
    assert nina["roles"] == ["analyst", "approver"]
    assert nina["enabled"] is False
    code, out, _ = cli("roles", "list", "--json")
    roles = {r["name"]: r for r in json.loads(out)}
    assert {"admin", "marketer", "analyst", "approver", "relationship_manager", "branch_manager", "auditor"} <= set(
        roles
    )
    assert "customers:reveal" not in roles["analyst"]["permissions"]
    code, _, err = cli("roles", "create", "odd", "-p", "segments:fly")
    assert code == 2
    assert "segments:fly" in err
    code, out, _ = cli("audit", "list", "--action", "user.", "--json")
    assert {e["action"] for e in json.loads(out)} >= {"user.create", "user.set-roles", "user.disable"}
