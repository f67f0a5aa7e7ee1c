"""`marketloop docs permissions`: write (or check) the generated permission matrix, docs/permissions.md."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from marketloop.api.app import create_app
from marketloop.api.permission_doc import permission_matrix
from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.cli.common import console, fail

app = typer.Typer(help="Generated documentation.", no_args_is_help=True)


def current_matrix() -> str:
    """The matrix of the app as the code declares it (built over a throw-away data directory)."""
    with tempfile.TemporaryDirectory(prefix="marketloop-docs-") as folder:
        container = Container.open(Settings(data_dir=Path(folder) / "data"))
        try:
            return permission_matrix(create_app(container))
        finally:
            container.close()


@app.command()
def permissions(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write it.")] = Path("docs/permissions.md"),
    check: Annotated[
        bool, typer.Option("--check", help="Only check that OUTPUT is up to date (exit 1 if not).")
    ] = False,
) -> None:
    """Write the permission matrix (route → method → permission → roles)."""
    text = current_matrix()
    if check:
        if not output.exists() or output.read_text(encoding="utf-8") != text:
            fail(f"{output} is out of date; run `marketloop docs permissions`", code=1)
        console.print(f"{output} is up to date.")
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    console.print(f"Wrote {output}.")
