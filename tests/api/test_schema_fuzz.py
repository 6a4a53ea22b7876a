"""Schemathesis against our own OpenAPI schema: whatever it sends, never a 5xx, and every
error is our JSON error body.

(Driven through Hypothesis directly: schemathesis' pytest plugin does not load under this
pytest version.)

On a scripted engine (no model): the subject is the service's answers to whatever it is
sent, not the model's words; the few examples that decode are answered in microseconds.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from stepaudio.api import create_app
from stepaudio.config import Settings
from stepaudio.testing.scripted import ScriptedEngine
from stepaudio.testing.server import serve_in_thread

# Audio endpoints get random bytes as the file; each example costs a request, so a few
# per operation keep the suite fast while still covering every field's edge values.
MAX_EXAMPLES = 10


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service on a scripted engine, its own: what the fuzzer creates (tasks, sessions)
    is seen by no other test."""
    config = Settings(data_dir=tmp_path_factory.mktemp("schema-fuzz"), _env_file=None)
    app = create_app(config, engine=ScriptedEngine())
    with serve_in_thread(app, settings=config) as url:
        yield url


def test_no_server_errors(server: str):
    schema = schemathesis.openapi.from_url(f"{server}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            # The same examples every run: CI must not fail on a draw it never saw here.
            derandomize=True,
        )
        def check(case) -> None:
            response = case.call(timeout=120)
            where = f"{case.method} {case.formatted_path}"
            assert response.status_code < 500, (where, response.text[:500])
            if response.status_code >= 400:
                body = response.json()
                assert body["error"]["message"], (where, body)
                if case.path.startswith("/api"):
                    assert body["status"] == "error", (where, body)

        check()
