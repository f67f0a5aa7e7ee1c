"""`marketloop keys`: field-encryption key status and rotation (密钥轮换)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from marketloop.app.governance import key_rotation, rotate_keys
from marketloop.cli.common import AsJson, ConfigFile, DataDir, console, opened, print_json
from marketloop.security.rotation import KeyStatus

app = typer.Typer(help="Field-encryption keys: status and rotation.", no_args_is_help=True)


def _status_dict(status: KeyStatus) -> dict[str, object]:
    return {
        "current": status.current,
        "key_ids": status.key_ids,
        "stale": status.stale,
        "columns": [{"column": c.column.name, "by_key": c.by_key, "stale": c.stale} for c in status.columns],
    }


@app.command()
def status(data_dir: DataDir = None, config: ConfigFile = None, as_json: AsJson = False) -> None:
    """Key ids, the current one, and per encrypted column how many values still use older keys."""
    with opened(data_dir, config) as container:
        result = key_rotation(container, container.audit).status()
    if as_json:
        print_json(_status_dict(result))
        return
    console.print(f"current key: [bold]{result.current}[/]   keys: {', '.join(result.key_ids)}")
    table = Table("column", "values by key", "not under the current key")
    for c in result.columns:
        table.add_row(c.column.name, ", ".join(f"{k}: {n}" for k, n in sorted(c.by_key.items())), str(c.stale))
    console.print(table)


@app.command()
def rotate(
    resume: Annotated[
        bool, typer.Option("--resume", help="Add no key; finish re-encrypting values still under older keys.")
    ] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: AsJson = False,
) -> None:
    """Add a new encryption key, make it current, and re-encrypt every stored value under it.

    Stop `marketloop serve` first. Safe to interrupt: run `keys rotate --resume` to finish.
    The hash key is not rotated (see docs/security.md).
    """
    with opened(data_dir, config) as container:
        result = rotate_keys(container, container.audit, new_key=not resume)
    if as_json:
        print_json(
            {
                "key_id": result.key_id,
                "reencrypted": result.reencrypted,
                "failed": result.failed,
                "columns": result.by_column,
            }
        )
        return
    console.print(f"current key [bold]{result.key_id}[/]: {result.reencrypted} values re-encrypted")
    if result.failed:
        console.print(f"[yellow]{result.failed} values could not be decrypted and were left as they are[/]")
