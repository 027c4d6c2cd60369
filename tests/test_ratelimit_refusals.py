"""The rate limiter names the limit behind each refusal (for the metrics)."""

from __future__ import annotations

import pytest

from miva_connect.ratelimit import LimitsConfig, RateLimited, RateLimiter


async def test_each_refusal_names_its_limit() -> None:
    refused: list[str] = []
    config = LimitsConfig(
        per_session="1 per hour",
        per_client="1 per hour",
        per_store_host="1 per hour",
        sessions_per_client="1 per hour",
        max_outbound=1,
    )
    limiter = RateLimiter(config, "async+memory://", on_refused=refused.append)
    await limiter.check_validation(session="s", client="c", store_host="h")
    # Each attempt spends fresh budgets except the one already spent by the first.
    for session, client, host in (("s", "c2", "h2"), ("s3", "c", "h3"), ("s4", "c4", "h")):
        with pytest.raises(RateLimited):
            await limiter.check_validation(session=session, client=client, store_host=host)
    await limiter.check_session_opening("c")
    with pytest.raises(RateLimited):
        await limiter.check_session_opening("c")
    async with limiter.outbound_slot():
        with pytest.raises(RateLimited):
            async with limiter.outbound_slot():
                pass
    assert refused == ["session", "client", "store_host", "sessions_per_client", "outbound"]
