"""The `marketloop` command."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from starlette.types import ASGIApp

from marketloop.api.app import create_app
from marketloop.app.container import Container
from marketloop.app.dispatch import DispatcherProcess, serve_dispatcher
from marketloop.cli import analytics as analytics_commands
from marketloop.cli import channels as channel_commands
from marketloop.cli import customers, events, experiments, identity, imports, simulate, sources, tracking
from marketloop.cli import journeys as journey_commands
from marketloop.cli import policy as policy_commands
from marketloop.cli import segment_monitoring as monitoring_commands
from marketloop.cli import segments as segment_commands
from marketloop.cli import tags as tag_commands
from marketloop.cli import triggers as trigger_commands
from marketloop.cli.common import ConfigFile, DataDir, console, fail, report, settings_for
from marketloop.cli.demo_access import print_demo_login
from marketloop.cli.demo_warmup import start_warm_up
from marketloop.cli.governance_commands import cli_actor, register_governance
from marketloop.core.errors import MarketloopError
from marketloop.ports.eventlog import LogLockedError
from marketloop.security.audit import acting_as

app = typer.Typer(
    name="marketloop",
    help="marketloop: closed-loop marketing for banks (营销闭环平台).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(sources.app, name="sources")
app.add_typer(customers.app, name="customers")
app.add_typer(events.app, name="events")
app.add_typer(tracking.app, name="tracking")
app.add_typer(segment_commands.app, name="segments")
monitoring_commands.register(segment_commands.app)
app.add_typer(tag_commands.app, name="tags")
app.add_typer(trigger_commands.app, name="triggers")
app.add_typer(journey_commands.app, name="journeys")
app.add_typer(identity.app, name="identity")
app.add_typer(channel_commands.app, name="channels")
app.add_typer(policy_commands.app, name="policy")
app.add_typer(analytics_commands.app, name="analytics")
app.add_typer(experiments.app, name="experiment")
app.command("import")(imports.import_file)
register_governance(app)
app.command("simulate")(simulate.simulate)

Host = Annotated[str | None, typer.Option("--host", help="Address to listen on [default: 127.0.0.1].")]
Port = Annotated[int | None, typer.Option("--port", help="Port to listen on [default: 8000].")]


def _serve(data_dir: Path | None, config: Path | None, host: str | None, port: int | None, *, demo: bool) -> None:
    settings = settings_for(data_dir, config)
    host = host or settings.server.host
    port = settings.server.port if port is None else port
    try:
        container = Container.open(settings)
    except LogLockedError as error:
        fail(f"{error}: is another `marketloop serve` running on this data directory?", code=6)
    if settings.stream.dispatcher == "process":
        container.dispatcher_process = DispatcherProcess(settings.data_dir, config)
    if demo:
        simulate.simulate_demo_bank(container)
        _demo_source(container, f"http://{host}:{port}")
        print_demo_login(container, f"http://{host}:{port}")
    console.print(f"marketloop listening on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    if demo:
        start_warm_up(container)
    GracefulServer(server_config(create_app(container), host, port)).run()


class GracefulServer(uvicorn.Server):
    """A uvicorn server whose graceful stop on SIGTERM / SIGINT ends the process with exit code 0.

    uvicorn re-raises the captured signal after draining, so the process would die
    by the signal; once the lifespan shutdown has drained the log and the loader,
    the stop was a success and supervisors should see 0.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()


def server_config(asgi_app: ASGIApp, host: str, port: int) -> uvicorn.Config:
    """How `marketloop serve` runs an ASGI app; benchmarks/ingest.py serves its raw baseline with it too."""
    return uvicorn.Config(
        asgi_app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )


def _demo_source(container: Container, url: str) -> None:
    key_file = container.settings.data_dir / "demo-write-key.txt"
    if not key_file.exists():
        _, key = container.sources.create("demo-app", project="default")
        key_file.write_text(key + "\n")
    key = key_file.read_text().strip()
    console.print(f"Demo source [bold]demo-app[/] write key: [bold]{key}[/]")
    console.print(
        "Try: curl -u " + key + ": -H 'Content-Type: application/json' "
        '-d \'{"userId":"C0001","event":"fund_page_view"}\' ' + f"{url}/v1/track",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def serve(data_dir: DataDir = None, config: ConfigFile = None, host: Host = None, port: Port = None) -> None:
    """Run the API with the loader until SIGTERM / Ctrl-C, then drain and stop."""
    _serve(data_dir, config, host, port, demo=False)


@app.command()
def dispatch(data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Send the journeys' outbox (what `serve` starts beside itself); until SIGTERM / Ctrl-C, then drain."""
    serve_dispatcher(settings_for(data_dir, config))


@app.command()
def demo(data_dir: DataDir = None, config: ConfigFile = None, host: Host = None, port: Port = None) -> None:
    """Start a demo: a ready source with its write key, the server and the API docs."""
    _serve(data_dir, config, host, port, demo=True)


def main(argv: list[str] | None = None) -> None:
    """The console script: runs the command and turns domain errors into a message and an exit code."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("marketloop").setLevel(logging.INFO)
    try:
        with acting_as(cli_actor()):
            app(args=argv)
    except MarketloopError as error:
        report(error)
