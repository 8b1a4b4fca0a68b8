"""The API's metrics (issue 11, item 3), over real HTTP: in production its public
`/metrics` is 404 and the series are served at GUEST_JOURNEY_METRICS_ADDRESS; in
development `/metrics` stays on its listener; HTTP requests are counted and timed
by route template, never by path."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.api.test_health import served
from tests.test_metrics_server import sample, scrape, with_metrics_address


async def test_the_production_api_serves_metrics_only_at_the_metrics_address(api_settings, sessions):
    """`sessions` upgrades the schema: production only checks it."""
    production = with_metrics_address(api_settings).model_copy(update={"env": "production"})
    address = production.metrics_address
    assert address is not None
    # The registry is the test process's: other tests' requests are in it, so count differences.
    public_metrics = 'guest_journey_http_requests_total{method="GET",route="/metrics",status="200"}'
    unmatched = 'guest_journey_http_requests_total{method="GET",route="unmatched",status="404"}'
    looked_up = 'guest_journey_http_requests_total{method="GET",route="/guest-experience/{reservation_id}",status="404"}'
    async with served(production) as (web, _):
        before = (await scrape(address)).text
        public = await web.get("/metrics")
        await web.get("/guest-experience/PROD-METRICS-1")
        internal = await scrape(address)
        internal_live = await scrape(address, "/health/live")
        elsewhere = await scrape(address, "/guest-experience/journey")
    assert public.status_code == 404
    assert internal.status_code == 200
    # the public /metrics matched no route: 404, counted as unmatched
    assert (sample(internal.text, public_metrics) or 0) == (sample(before, public_metrics) or 0)
    assert sample(internal.text, unmatched) == (sample(before, unmatched) or 0) + 1
    assert sample(internal.text, looked_up) == (sample(before, looked_up) or 0) + 1  # the API's own series
    assert internal_live.status_code == 200 and elsewhere.status_code == 404
    with pytest.raises(httpx.ConnectError):  # closed with the app
        await scrape(address)


async def test_development_keeps_metrics_on_the_api_listener(api_settings):
    assert api_settings.env == "development"
    async with served(api_settings) as (web, _):
        answer = await web.get("/metrics")
    assert answer.status_code == 200 and "guest_journey_http_requests_total" in answer.text


async def test_http_requests_are_counted_and_timed_by_route_template(api_settings):
    reservation_id = f"HTTP-METRICS-{uuid.uuid4().hex[:8]}"
    route = "/guest-experience/{reservation_id}"
    counted = f'guest_journey_http_requests_total{{method="GET",route="{route}",status="404"}}'
    timed = f'guest_journey_http_request_duration_seconds_count{{method="GET",route="{route}"}}'
    async with served(api_settings) as (web, _):
        before = (await web.get("/metrics")).text
        answers = [await web.get(f"/guest-experience/{reservation_id}-{n}") for n in range(2)]
        unmatched = await web.get(f"/no-such-page/{reservation_id}")
        after = (await web.get("/metrics")).text
    assert {answer.status_code for answer in answers} == {404}
    assert unmatched.status_code == 404
    assert sample(after, counted) == (sample(before, counted) or 0) + 2
    assert sample(after, timed) == (sample(before, timed) or 0) + 2
    assert 'guest_journey_http_requests_total{method="GET",route="unmatched",status="404"}' in after
    assert reservation_id not in after  # never a raw path
