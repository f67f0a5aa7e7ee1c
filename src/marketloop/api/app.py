"""The HTTP application: collection endpoints and, in later issues, the product API and console."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.responses import Response

from marketloop import __version__
from marketloop.api import problem
from marketloop.api.routers import analytics as analytics_api
from marketloop.api.routers import approvals as approvals_api
from marketloop.api.routers import auth as auth_api
from marketloop.api.routers import channels as channel_api
from marketloop.api.routers import consent as consent_api
from marketloop.api.routers import customers, identity, segment, sensors, tracking
from marketloop.api.routers import experiments as experiment_api
from marketloop.api.routers import journey_runs as journey_runs_api
from marketloop.api.routers import journeys as journey_api
from marketloop.api.routers import segment_monitoring as segment_monitoring_api
from marketloop.api.routers import segments as segment_api
from marketloop.api.routers import tags as tag_api
from marketloop.api.routers import triggers as trigger_api
from marketloop.api.routers import users as users_api
from marketloop.api.security_headers import secure_routes
from marketloop.app.container import Container


def create_app(container: Container) -> FastAPI:
    """The app over an opened container; starting it starts the loader, stopping it drains."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        container.start()
        try:
            yield
        finally:
            await container.aclose()

    app = FastAPI(title="marketloop", version=__version__, lifespan=lifespan)
    app.state.container = container
    problem.install(app)
    app.include_router(segment.router)
    app.include_router(customers.router)
    app.include_router(sensors.router)
    app.include_router(tracking.router)
    app.include_router(segment_monitoring_api.router)  # before segments: /v1/segments/fixed/… is no segment id
    app.include_router(segment_api.router)
    app.include_router(tag_api.router)
    app.include_router(identity.router)
    app.include_router(analytics_api.router)
    app.include_router(trigger_api.router)
    app.include_router(journey_api.router)
    app.include_router(journey_runs_api.router)  # after: /step-types is not a journey id
    app.include_router(auth_api.router)
    app.include_router(channel_api.router)
    app.include_router(users_api.router)
    app.include_router(approvals_api.router)
    app.include_router(consent_api.router)
    app.include_router(experiment_api.router)

    @app.get("/healthz", tags=["ops"], summary="Liveness")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    secure_routes(app)  # last: every route but the collection ones gets the security headers

    return app
