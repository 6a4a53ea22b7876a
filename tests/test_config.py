"""Settings: grouped names, the flat names from before the groups, secrets kept secret, and
a service without its web page."""

from __future__ import annotations

import pytest

from stepaudio.config import FLAT_NAMES, Settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for name in list(os.environ):
        if name.upper().startswith("STEPAUDIO_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_nested_and_flat_environment_names(clean_env: pytest.MonkeyPatch):
    clean_env.setenv("STEPAUDIO_TASKS__LEASE_S", "30")
    clean_env.setenv("STEPAUDIO_TASK_HEARTBEAT_S", "3")  # the flat name still works
    clean_env.setenv("STEPAUDIO_WEBHOOK_ALLOW_HOSTS", '["hooks.internal"]')
    clean_env.setenv("STEPAUDIO_WHISPER__BEAM_SIZE", "1")
    clean_env.setenv("STEPAUDIO_WHISPER_BEAM_SIZE", "4")  # the nested name wins
    s = Settings(_env_file=None)
    assert s.tasks.lease_s == 30 and s.tasks.heartbeat_s == 3
    assert s.webhooks.allow_hosts == ["hooks.internal"]
    assert s.whisper.beam_size == 1


def test_keywords_flat_or_grouped_beat_the_environment(clean_env: pytest.MonkeyPatch):
    clean_env.setenv("STEPAUDIO_TASK_LEASE_S", "30")
    assert Settings(_env_file=None, task_lease_s=3).tasks.lease_s == 3
    assert Settings(_env_file=None, tasks={"lease_s": 4}).tasks.lease_s == 4
    assert Settings(_env_file=None, max_pending_tasks_per_key=7).tasks.max_pending_per_key == 7


def test_every_flat_name_lands_in_its_group(clean_env: pytest.MonkeyPatch):
    for flat, (group, name) in FLAT_NAMES.items():
        field = getattr(Settings(_env_file=None), group).__class__.model_fields.get(name)
        if field is None:
            continue  # an old name of another field: webhook_retries, below
        if field.annotation not in (int, float, int | None, float | None):
            continue
        value = 7000 if field.annotation in (int, int | None) else 7000.5
        assert getattr(getattr(Settings(_env_file=None, **{flat: value}), group), name) == value


def test_webhook_retries_are_attempts_after_the_first(clean_env: pytest.MonkeyPatch):
    assert Settings(_env_file=None, webhook_retries=0).webhooks.attempts == 1
    clean_env.setenv("STEPAUDIO_WEBHOOKS__RETRIES", "4")
    assert Settings(_env_file=None).webhooks.attempts == 5


def test_every_retry_loop_counts_attempts(clean_env: pytest.MonkeyPatch):
    s = Settings(_env_file=None, backend_retries=1, task_max_attempts=2, webhook_retries=2)
    policies = [s.backend.retry, s.pipeline.window_retry, s.tasks.retry, s.webhooks.retry]
    assert [p.attempts for p in policies] == [1, 3, 2, 3]
    assert [s.tasks.retry.again(n) for n in (1, 2)] == [True, False]
    # Doubled each time, never past the cap.
    assert [s.tasks.retry.delay(n) for n in (1, 2, 3, 10)] == [5, 10, 20, 600]


def test_the_engine_is_named_or_found(clean_env: pytest.MonkeyPatch):
    from stepaudio.engines.factory import build_engine, engine_kind
    from stepaudio.errors import InvalidParameter

    assert engine_kind(Settings(_env_file=None)) == "embedded"
    assert engine_kind(Settings(_env_file=None, transcription_url="http://a:1")) == "cascade"
    both = Settings(_env_file=None, transcription_url="http://a:1", vllm_api_url="http://b:2")
    assert engine_kind(both) == "stepaudio"
    assert engine_kind(both.model_copy(update={"engine": "cascade"})) == "cascade"
    with pytest.raises(InvalidParameter, match="no backend"):
        build_engine(Settings(_env_file=None, engine="stepaudio"))


def test_invalid_values_are_refused_in_either_spelling(clean_env: pytest.MonkeyPatch):
    with pytest.raises(ValueError):
        Settings(_env_file=None, task_lease_s=-1)
    clean_env.setenv("STEPAUDIO_WHISPER__THREADS", "0")
    with pytest.raises(ValueError):
        Settings(_env_file=None)


def test_secrets_never_show(clean_env: pytest.MonkeyPatch):
    clean_env.setenv("STEPAUDIO_WEBHOOK_SECRET", "hush-hush")
    s = Settings(_env_file=None, api_keys=["key-one"], chat_api_key="chat-key")
    shown = repr(s) + str(s.model_dump())
    for secret in ("hush-hush", "key-one", "chat-key"):
        assert secret not in shown
    assert s.webhooks.secret is not None and s.webhooks.secret.get_secret_value() == "hush-hush"


def test_without_the_page_there_is_no_page():
    from stepaudio.api import create_app

    app = create_app(Settings(_env_file=None, ui=False))
    assert not any(getattr(r, "path", "").startswith("/ui") for r in app.routes)
