"""prometheus_text(): a pipeline's statistics as Prometheus text, read back by the reference
parser (prometheus_client), alone and from a /metrics endpoint of a real app."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

import alog
from alog.integrations import PROMETHEUS_CONTENT_TYPE, prometheus_text
from alog.integrations import aiohttp as alog_aiohttp
from alog.integrations.asgi import RequestLogMiddleware, lifespan

pytestmark = pytest.mark.asyncio


def parse(text: str) -> dict[str, Any]:
    """Families by name; fails on anything the reference parser rejects."""
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(families: dict[str, Any], name: str, **labels: str) -> float:
    family_name = name.removesuffix("_total")
    matches = [
        sample
        for sample in families[family_name].samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(matches) == 1, (name, labels, families[family_name].samples)
    sample: Sample = matches[0]
    return float(sample.value)


async def statistics_of_a_real_pipeline(tmp_path: Path) -> alog.Statistics:
    """Two destinations, one filtering by level, some events dropped on overflow."""
    path = tmp_path / "log.jsonl"
    async with alog.run(
        alog.File(path), alog.File(tmp_path / "errors.jsonl", level="error"), max_events=8
    ) as pipeline:
        log = alog.get_logger("app")
        for number in range(100):
            log.info("burst", n=number)
        await pipeline.aflush()
        log.error("bad")
        await pipeline.aflush()
        return pipeline.statistics()


async def test_every_count_is_exposed_and_parses(tmp_path: Path) -> None:
    """accepted, written, dropped, undelivered, filtered, queued: totals and per destination."""
    statistics = await statistics_of_a_real_pipeline(tmp_path)
    assert statistics.dropped > 0 and statistics.filtered > 0
    text = prometheus_text(statistics)
    families = parse(text)
    for field in ("accepted", "written", "dropped", "undelivered", "filtered"):
        assert families[f"alog_events_{field}"].type == "counter"
        assert value(families, f"alog_events_{field}_total") == getattr(statistics, field)
    assert families["alog_events_queued"].type == "gauge"
    assert value(families, "alog_events_queued") == statistics.queued
    assert value(families, "alog_writer_state", state="running") == 1
    assert value(families, "alog_writer_state", state="failed") == 0
    for destination in statistics.destinations:
        name = destination.name
        assert value(families, "alog_destination_events_written_total", destination=name) == (
            destination.written
        )
        assert value(families, "alog_destination_events_filtered_total", destination=name) == (
            destination.filtered
        )
        assert value(families, "alog_destination_events_dropped_total", destination=name) == (
            destination.dropped
        )
        assert value(families, "alog_destination_state", destination=name, state="running") == 1
    # Every sample's name was given its HELP and TYPE lines before it.
    helped: set[str] = set()
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
        elif line.startswith("# TYPE "):
            typed.add(line.split()[2])
        else:
            name = line.split("{")[0].split(" ")[0]
            assert name in helped and name in typed, line
    assert text.endswith("\n")


async def test_label_values_are_escaped_and_repeated_names_made_unique(tmp_path: Path) -> None:
    """A destination's name may hold quotes, backslashes or newlines; two may share one."""
    statistics = await statistics_of_a_real_pipeline(tmp_path)
    odd = 'a "quoted"\\path\nwith a newline'
    destinations = tuple(
        dataclasses.replace(destination, name=odd) for destination in statistics.destinations
    )
    families = parse(prometheus_text(dataclasses.replace(statistics, destinations=destinations)))
    names = {
        sample.labels["destination"]
        for sample in families["alog_destination_events_written"].samples
    }
    assert names == {odd, f"{odd} #2"}


async def test_prefix_and_constant_labels(tmp_path: Path) -> None:
    """Several workers or pipelines can be told apart by labels, or by a prefix."""
    statistics = await statistics_of_a_real_pipeline(tmp_path)
    families = parse(prometheus_text(statistics, prefix="api_log", labels={"worker": "3"}))
    assert value(families, "api_log_events_accepted_total", worker="3") == statistics.accepted


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"prefix": "1bad"}, ValueError),
        ({"prefix": "has space"}, ValueError),
        ({"labels": {"bad-name": "x"}}, ValueError),
        ({"labels": {"__reserved": "x"}}, ValueError),
        ({"labels": {"destination": "x"}}, ValueError),
        ({"labels": {"worker": 3}}, TypeError),
    ],
)
async def test_bad_names_fail_at_once(
    tmp_path: Path, options: dict[str, Any], error: type[Exception]
) -> None:
    """A name the format forbids is a ValueError here, not a scrape that fails later."""
    statistics = await statistics_of_a_real_pipeline(tmp_path)
    with pytest.raises(error):
        prometheus_text(statistics, **options)


async def test_not_statistics_is_a_type_error() -> None:
    """It takes pipeline.statistics(), not the pipeline."""
    with pytest.raises(TypeError, match="statistics"):
        prometheus_text(object())  # type: ignore[arg-type]


async def test_fastapi_metrics_endpoint(tmp_path: Path) -> None:
    """The documented /metrics recipe under FastAPI: the running app's own counts."""
    app = FastAPI(lifespan=lifespan(destination=alog.File(tmp_path / "log.jsonl")))
    app.add_middleware(RequestLogMiddleware, skip={"/metrics"})

    @app.get("/metrics")
    async def metrics(request: Request) -> PlainTextResponse:
        text = prometheus_text(request.app.state.alog.statistics())
        return PlainTextResponse(text, media_type=PROMETHEUS_CONTENT_TYPE)

    @app.get("/")
    async def root() -> dict[str, str]:
        return {"ok": "yes"}

    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as http,
    ):
        for _ in range(3):
            await http.get("/")
        await app.state.alog.aflush()
        response = await http.get("/metrics")
    assert response.headers["content-type"] == PROMETHEUS_CONTENT_TYPE
    families = parse(response.text)
    assert value(families, "alog_events_accepted_total") == 3  # three access lines
    assert value(families, "alog_events_written_total") == 3


async def test_aiohttp_metrics_endpoint(tmp_path: Path) -> None:
    """The same under aiohttp, through app["alog"]."""

    async def metrics(request: web.Request) -> web.Response:
        text = prometheus_text(request.app["alog"].statistics())
        return web.Response(text=text, headers={"Content-Type": PROMETHEUS_CONTENT_TYPE})

    async def root(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", root)
    alog_aiohttp.setup(app, destination=alog.File(tmp_path / "log.jsonl"), skip={"/metrics"})
    async with TestClient(TestServer(app, host="127.0.0.1")) as http:
        for _ in range(2):
            await (await http.get("/")).read()
        await app[alog_aiohttp.ALOG_KEY].pipeline.aflush()
        response = await http.get("/metrics")
        assert response.headers["Content-Type"] == PROMETHEUS_CONTENT_TYPE
        families = parse(await response.text())
    assert value(families, "alog_events_accepted_total") == 2
    assert value(families, "alog_destination_events_written_total") == 2
