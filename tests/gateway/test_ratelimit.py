"""Rate-limit counting without servers."""

from __future__ import annotations

import asyncio

from gateway.config import GatewaySettings
from gateway.ratelimit import LocalCounters, RateLimiter


async def test_local_windows_start_at_the_first_hit_and_reset_after() -> None:
    counters = LocalCounters()
    assert [await counters.incr("k", 1) for _ in range(3)] == [1, 2, 3]
    assert await counters.incr("other", 1) == 1
    await asyncio.sleep(1.05)
    assert await counters.incr("k", 1) == 1


async def test_the_tightest_limit_is_reported_and_refusal_names_its_limit() -> None:
    limiter = RateLimiter(
        GatewaySettings(
            environment="test", rate_limit_ip="3/minute", rate_limit_subject="100/minute", rate_limit_classes={}
        )
    )
    first = await limiter.check_client("192.0.2.1", "default")
    assert first.allowed
    assert first.remaining == 2
    assert dict(first.headers())["ratelimit-policy"] == '"ip";q=3;w=60'
    for _ in range(2):
        assert (await limiter.check_client("192.0.2.1", "default")).allowed
    refused = await limiter.check_client("192.0.2.1", "default")
    assert not refused.allowed
    headers = dict(refused.headers())
    assert 1 <= int(headers["retry-after"]) <= 60
    assert headers["ratelimit-remaining"] == "0"
    # Another address has its own window.
    assert (await limiter.check_client("192.0.2.2", "default")).allowed
