"""The service's task API (``/api/task``), called in-process through an ASGI client.

The page gets exactly what API clients get (durable tasks, the same validation and
keys) without knowing its own URL; each call carries the visitor's own credentials (their
key, or their page session), so a task started on the page belongs to that key's owner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from stepaudio.params import ProcessParams


class TaskClient:
    """The service's task API, called in-process (no URL, no network)."""

    def __init__(self, app: FastAPI):
        self.app = app

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://stepaudio.ui",
            timeout=None,
        )

    async def submit(
        self, path: Path, params: ProcessParams, credentials: dict[str, str]
    ) -> dict[str, Any]:
        fields = {
            k: ("true" if v else "false") if isinstance(v, bool) else str(v)
            for k, v in params.model_dump(mode="json").items()
            if v is not None
        }
        async with self._client() as client:
            with path.open("rb") as f:
                resp = await client.post(
                    "/api/task",
                    data=fields,
                    files={"audio": (path.name, f)},
                    headers=credentials,
                )
        return {"http_status": resp.status_code, **resp.json()}

    async def get(self, task_id: str, credentials: dict[str, str]) -> dict[str, Any]:
        async with self._client() as client:
            resp = await client.get(f"/api/task/{task_id}", headers=credentials)
        return {"http_status": resp.status_code, **resp.json()}
