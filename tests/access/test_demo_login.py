"""`marketloop demo` creates a demo admin login and token once, keeps them private, and shows the same ones later."""

from __future__ import annotations

import stat
from pathlib import Path

from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.cli.demo_access import ensure_demo_login


def test_the_demo_login_works_and_is_kept_private(tmp_path: Path) -> None:
    container = Container.open(Settings(data_dir=tmp_path / "data"))
    try:
        username, password, token = ensure_demo_login(container)
        assert ensure_demo_login(container) == (username, password, token)
        assert container.access.login(username, password, client="test").user.roles == ("admin",)
        assert container.access.authenticate_token(token).may("users:admin")
        for name in ("demo-login.txt", "demo-token.txt"):
            assert stat.S_IMODE((tmp_path / "data" / name).stat().st_mode) == 0o600
    finally:
        container.close()
