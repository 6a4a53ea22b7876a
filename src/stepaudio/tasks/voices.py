"""A key's voice library in the task database: names and voice prints, never audio.

Every function takes the owner: a key never sees, matches, renames or deletes another
key's voices (another's voice is indistinguishable from a missing one: 404).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from stepaudio.errors import Conflict, InvalidParameter, NotFound, QueueFull
from stepaudio.params import MAX_LIBRARY_VOICES
from stepaudio.tasks.db import read_transaction, transaction
from stepaudio.tasks.models import Voice, utcnow
from stepaudio.tasks.store import TaskStore

MAX_VOICES = MAX_LIBRARY_VOICES
ALL = "*"
"""Every voice of the key (``voices=*``)."""


@dataclass(frozen=True)
class VoiceRecord:
    voice_id: str
    name: str
    seconds: float
    created_at: datetime


def _record(row: Any) -> VoiceRecord:
    return VoiceRecord(row.id, row.name, float(row.seconds), row.created_at)


def _taken(name: str) -> Conflict:
    return Conflict(
        f"A voice named {name!r} exists; rename or delete it first.",
        param="name",
        code="voice_exists",
    )


def enrol(
    store: TaskStore, owner: str, name: str, vector: np.ndarray, seconds: float
) -> VoiceRecord:
    with transaction(store.engine) as conn:
        count = conn.execute(select(func.count()).where(Voice.owner == owner)).scalar_one()
        if count >= MAX_VOICES:
            raise QueueFull(
                f"A key keeps at most {MAX_VOICES} voices; delete some first.",
                code="voice_quota_exceeded",
            )
        voice_id, now = str(uuid.uuid4()), utcnow()
        try:
            conn.execute(
                insert(Voice).values(
                    id=voice_id,
                    owner=owner,
                    name=name,
                    seconds=seconds,
                    created_at=now,
                    print=np.asarray(vector, dtype="<f4").tobytes(),
                )
            )
        except IntegrityError:
            raise _taken(name) from None
    return VoiceRecord(voice_id, name, seconds, now)


def listed(store: TaskStore, owner: str) -> list[VoiceRecord]:
    with read_transaction(store.engine) as conn:
        rows = conn.execute(select(Voice).where(Voice.owner == owner).order_by(Voice.name))
        return [_record(r) for r in rows]


def rename(store: TaskStore, owner: str, voice_id: str, name: str) -> VoiceRecord:
    with transaction(store.engine) as conn:
        try:
            done = conn.execute(
                update(Voice).where(Voice.id == voice_id, Voice.owner == owner).values(name=name)
            ).rowcount
        except IntegrityError:
            raise _taken(name) from None
        if not done:
            raise _missing(voice_id)
        row = conn.execute(select(Voice).where(Voice.id == voice_id)).one()
    return _record(row)


def remove(store: TaskStore, owner: str, voice_id: str) -> None:
    with transaction(store.engine) as conn:
        if not conn.execute(
            delete(Voice).where(Voice.id == voice_id, Voice.owner == owner)
        ).rowcount:
            raise _missing(voice_id)


def prints(store: TaskStore, owner: str, names: list[str]) -> dict[str, np.ndarray]:
    """The voice prints of ``names`` (``*``: all) of ``owner``; an unknown name is a 400."""
    query = select(Voice.name, Voice.print).where(Voice.owner == owner)
    if ALL not in names:
        query = query.where(Voice.name.in_(names))
    with read_transaction(store.engine) as conn:
        found = {r.name: np.frombuffer(r.print, dtype="<f4").copy() for r in conn.execute(query)}
    missing = [n for n in names if n != ALL and n not in found]
    if missing:
        raise InvalidParameter(
            f"No voice named {missing[0]!r} in this key's library (GET /api/voices).",
            param="voices",
            code="unknown_voice",
        )
    return found


def _missing(voice_id: str) -> NotFound:
    return NotFound(f"No voice {voice_id!r}.", param="voice_id", code="voice_not_found")
