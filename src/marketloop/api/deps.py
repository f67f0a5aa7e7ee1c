"""FastAPI dependencies: the services a route may ask for."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.types import Scope

from marketloop.app.container import Container
from marketloop.collect.service import CollectService
from marketloop.collect.sources import SourceService


def container(request: Request) -> Container:
    found: Container = request.app.state.container
    return found


def collect_service(request: Request) -> CollectService:
    return container(request).collect


def collect_service_of(scope: Scope) -> CollectService:
    """The collection service, for routes served as plain ASGI (no dependency injection)."""
    found: CollectService = scope["app"].state.container.collect
    return found


def source_service(request: Request) -> SourceService:
    return container(request).sources


Collect = Annotated[CollectService, Depends(collect_service)]
Sources = Annotated[SourceService, Depends(source_service)]
AppContainer = Annotated[Container, Depends(container)]
