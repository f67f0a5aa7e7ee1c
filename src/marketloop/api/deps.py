"""FastAPI dependencies: the services a route may ask for."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from marketloop.app.container import Container
from marketloop.collect.service import CollectService
from marketloop.collect.sources import SourceService


def container(request: Request) -> Container:
    found: Container = request.app.state.container
    return found


def collect_service(request: Request) -> CollectService:
    return container(request).collect


def source_service(request: Request) -> SourceService:
    return container(request).sources


Collect = Annotated[CollectService, Depends(collect_service)]
Sources = Annotated[SourceService, Depends(source_service)]
AppContainer = Annotated[Container, Depends(container)]
