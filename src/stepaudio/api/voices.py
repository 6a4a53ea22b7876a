"""``/api/voices``: a key's voice library (known speakers).

Enrol a name from a sample (``POST /api/voices``, multipart ``name`` + ``audio``) or from
a speaker of one of the key's finished tasks (``POST /api/voices/from-task``), list,
rename (``PATCH``), delete. What is kept is the voice print (an embedding), never the
audio; it is biometric data, deleted for good by ``DELETE /api/voices/{id}``. Use the
voices by name on any request (``voices=Alice,Bob`` or ``voices=*``). One key never sees,
matches, renames or deletes another's (another key's voice answers 404, as a missing one).
"""

from __future__ import annotations

from datetime import UTC
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from stepaudio.api.auth import caller
from stepaudio.api.services import Services, get_services
from stepaudio.api.task_routes import task_store
from stepaudio.errors import InvalidParameter
from stepaudio.params import MAX_SPEAKER_NAME, speaker_name
from stepaudio.pipeline.speakers import MAX_REFERENCE_S
from stepaudio.tasks import AsyncTaskStore
from stepaudio.tasks import voices as library
from stepaudio.tasks.task_view import UtcTime
from stepaudio.tasks.voices import VoiceRecord

router = APIRouter(tags=["voices"])


class VoiceOut(BaseModel):
    voice_id: str
    name: str
    seconds: float
    """Seconds of speech the print was made from."""
    created_at: UtcTime

    @classmethod
    def of(cls, record: VoiceRecord) -> VoiceOut:
        return cls(
            voice_id=record.voice_id,
            name=record.name,
            seconds=round(record.seconds, 1),
            created_at=record.created_at.replace(tzinfo=UTC),
        )


class VoiceList(BaseModel):
    voices: list[VoiceOut]


class FromTask(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(max_length=64)
    speaker: str = Field(max_length=MAX_SPEAKER_NAME, description="Its label in the task: A, B…")
    name: str = Field(max_length=MAX_SPEAKER_NAME, description="Who it is")


class Rename(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=MAX_SPEAKER_NAME)


def _name(value: str) -> str:
    try:
        return speaker_name(value)
    except ValueError as exc:
        raise InvalidParameter(str(exc), param="name") from None


@router.post("/api/voices", status_code=201, response_model=VoiceOut)
async def enrol(
    name: Annotated[str, Form(max_length=MAX_SPEAKER_NAME, description="Who speaks")],
    audio: Annotated[
        UploadFile, File(description=f"One person talking, 5 to {MAX_REFERENCE_S:.0f} s")
    ],
    services: Services = Depends(get_services),
    store: AsyncTaskStore = Depends(task_store),
    who: str = Depends(caller),
) -> VoiceOut:
    """Enrol a voice from a sample: its print is kept, the audio is not."""
    name = _name(name)
    async with services.stored(audio) as up:
        vector, seconds = await services.pipeline.speakers.voice_print(up.path, "audio")
    return VoiceOut.of(await store.call(library.enrol, store.sync, who, name, vector, seconds))


@router.post("/api/voices/from-task", status_code=201, response_model=VoiceOut)
async def enrol_from_task(
    body: FromTask,
    services: Services = Depends(get_services),
    store: AsyncTaskStore = Depends(task_store),
    who: str = Depends(caller),
) -> VoiceOut:
    """ "This is Alice": a speaker of one of your finished tasks, enrolled by name."""
    name = _name(body.name)
    task = await store.get(body.task_id, who)
    segments = (task.result or {}).get("segments") or []
    spans = [(s["start"], s["end"]) for s in segments if s.get("speaker") == body.speaker]
    if not spans:
        raise InvalidParameter(
            f"Task {body.task_id!r} has no finished transcript with a speaker "
            f"{body.speaker!r} (ask for diarize, and wait until it completes).",
            param="speaker",
        )
    async with services.scratch_file() as path:
        await store.read_upload(task.upload_sha256, path)
        vector, seconds = await services.pipeline.speakers.voice_print_of(path, spans, "speaker")
    return VoiceOut.of(await store.call(library.enrol, store.sync, who, name, vector, seconds))


@router.get("/api/voices", response_model=VoiceList)
async def list_voices(
    store: AsyncTaskStore = Depends(task_store), who: str = Depends(caller)
) -> VoiceList:
    """Your voices, by name."""
    return VoiceList(
        voices=[VoiceOut.of(v) for v in await store.call(library.listed, store.sync, who)]
    )


@router.patch("/api/voices/{voice_id}", response_model=VoiceOut)
async def rename(
    voice_id: str,
    body: Rename,
    store: AsyncTaskStore = Depends(task_store),
    who: str = Depends(caller),
) -> VoiceOut:
    """Give a voice another name."""
    record = await store.call(library.rename, store.sync, who, voice_id, _name(body.name))
    return VoiceOut.of(record)


@router.delete("/api/voices/{voice_id}", status_code=204, response_class=Response)
async def delete(
    voice_id: str, store: AsyncTaskStore = Depends(task_store), who: str = Depends(caller)
) -> Response:
    """Delete a voice print for good."""
    await store.call(library.remove, store.sync, who, voice_id)
    return Response(status_code=204)
