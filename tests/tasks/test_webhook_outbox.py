"""Finding 6: one tenant's hanging webhook receiver must not hold up anyone else's."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stepaudio.tasks.async_store import AsyncTaskStore
from stepaudio.tasks.outbox import Outbox
from tests.tasks.test_store import new_task, shown


@pytest.fixture
def hanging_receiver() -> Iterator[str]:
    """Accepts connections and reads requests, never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    server.close()


def test_a_hanging_receiver_does_not_delay_another_tenants_webhook(
    make_store, tmp_path: Path, hanging_receiver: str, webhook_receiver
):
    healthy_url, received = webhook_receiver
    store = make_store(webhook_allow_hosts=["127.0.0.1"], webhook_timeout_s=20, task_poll_s=0.2)
    hanging = new_task(store, tmp_path, owner="a", content=b"a", webhook_url=hanging_receiver)
    store.complete(store.claim("w"), {"answer": "a"})  # due first
    healthy = new_task(store, tmp_path, owner="b", content=b"b", webhook_url=healthy_url)
    store.complete(store.claim("w"), {"answer": "b"})

    async def run() -> float:
        stop = asyncio.Event()
        outbox = asyncio.create_task(Outbox(AsyncTaskStore(store), store.settings).run(stop))
        started = time.monotonic()
        while not received and time.monotonic() - started < 15:
            await asyncio.sleep(0.02)
        took = time.monotonic() - started
        # The receiver has the call; let the outbox record its answer before stopping (a
        # stop cuts every try still in flight, this one included).
        while time.monotonic() - started < 15:
            healthy_now = await asyncio.to_thread(store.get, healthy)
            if healthy_now.webhook_state != "pending":
                break
            await asyncio.sleep(0.02)
        stop.set()
        await outbox
        return took

    took = asyncio.run(run())
    print(f"\nhealthy webhook delivered {took * 1000:.0f} ms after the outbox started")
    assert [p["task_id"] for p in received] == [healthy]
    assert took < 1.0, f"the healthy webhook waited {took:.2f} s"
    assert shown(store.get(healthy))["webhook"]["state"] == "delivered"
    # The hanging one's try was cut by the stop and is due again, not lost.
    assert shown(store.get(hanging))["webhook"]["state"] == "pending"
