"""The demo's warm-up builds profiles and tags once the background load has caught up."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

from marketloop.app.container import Container
from marketloop.app.settings import Settings
from marketloop.cli.demo_warmup import _warm_up
from marketloop.simulate import run


def test_the_warm_up_waits_for_the_loader_then_refreshes_profiles_and_tags(tmp_path: Path) -> None:
    container = Container.open(Settings(data_dir=tmp_path))
    try:
        target = run.Target(
            bank=container.bank,
            log=container.log,
            loader=container.loader,
            sources=container.sources,
            cipher=container.cipher,
            data_dir=tmp_path,
        )
        plan = run.Plan(customers=300, days=7, seed=3, end=date(2026, 11, 20))
        summary = asyncio.run(run.simulate(target, plan, load=False))  # the events wait in the log, as in the demo
        assert container.loader.lag(0) > 0
        container.loader.start()
        try:
            _warm_up(container)
        finally:
            container.loader.stop()
        cursor = container.warehouse.cursor()
        assert cursor.execute("SELECT count(*) FROM customer_profile").fetchone() == (300,)
        assert container.warehouse.count_events() == summary.events
        tagged = cursor.execute("SELECT count(DISTINCT tag) FROM customer_tags").fetchone()
        assert tagged is not None
        assert tagged[0] > 10
    finally:
        container.close()
