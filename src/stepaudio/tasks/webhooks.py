"""Tell a caller its task finished: POST the task's view to its ``webhook_url``, retrying."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import httpx

log = logging.getLogger(__name__)


def delivery_budget_s(retries: int, timeout_s: float, backoff_s: float) -> float:
    """Longest one delivery (every try and wait) can take: how long a worker holds it."""
    waits = sum(backoff_s * 2**i for i in range(retries))
    return (retries + 1) * timeout_s + waits + 30


async def deliver(
    url: str,
    payload: dict[str, Any],
    *,
    retries: int,
    timeout_s: float,
    backoff_s: float,
) -> bool:
    """POST ``payload`` as JSON until a 2xx answer; True if one came."""
    headers = {"X-Stepaudio-Task": str(payload.get("task_id", ""))}
    async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=False) as client:
        for attempt in range(retries + 1):
            if attempt:
                await anyio.sleep(backoff_s * 2 ** (attempt - 1))
            try:
                response = await client.post(url, json=payload, headers=headers)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    return True
                problem = f"HTTP {response.status_code}"
            log.info(
                "webhook for task %s, try %d: %s", payload.get("task_id"), attempt + 1, problem
            )
    log.warning("webhook for task %s not delivered to %s", payload.get("task_id"), url)
    return False
