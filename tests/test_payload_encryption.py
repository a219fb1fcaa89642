"""Payload encryption at rest (option): AES-GCM codec with key IDs, and the codec server the Web UI uses."""

from __future__ import annotations

import base64
import os
import uuid

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from api.app import create_app
from contracts import temporal
from contracts.codec import ENCODING, CodecKeyError, EncryptionCodec, parse_keys
from contracts.models import DiagnoseResult
from contracts.settings import Settings
from devenv.uvicorn_thread import UvicornThread
from worker import build_worker

K1, K2 = os.urandom(32), os.urandom(32)
SPEC = f"k1:{base64.b64encode(K1).decode()},k2:{base64.b64encode(K2).decode()}"


def plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text.encode())


async def test_round_trip_and_rotation():
    old = EncryptionCodec(parse_keys(SPEC), "k1")
    sealed = await old.encode([plain('"MR title"')])
    assert sealed[0].metadata["encoding"] == ENCODING and b"MR title" not in sealed[0].data
    rotated = EncryptionCodec(parse_keys(SPEC), "k2")  # new active key, old one kept for reading
    assert (await rotated.decode(sealed))[0].data == b'"MR title"'
    assert (await rotated.encode([plain("x")]))[0].metadata["encryption-key-id"] == b"k2"
    # Payloads written before encryption was switched on stay readable.
    assert (await rotated.decode([plain("old")]))[0].data == b"old"


async def test_unknown_key_and_tampering_are_clear_errors():
    sealed = await EncryptionCodec({"k1": K1}).encode([plain("x")])
    with pytest.raises(CodecKeyError, match="unknown key 'k1'"):
        await EncryptionCodec({"k2": K2}).decode(sealed)
    tampered = Payload(
        metadata=dict(sealed[0].metadata), data=sealed[0].data[:-1] + bytes([sealed[0].data[-1] ^ 1])
    )
    with pytest.raises(CodecKeyError, match="failed authentication"):
        await EncryptionCodec({"k1": K1}).decode([tampered])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "no keys"),
        ("nokey", "KEY_ID:BASE64_KEY"),
        ("k:!!!", "not valid base64"),
        ("k:" + base64.b64encode(b"short").decode(), "32 bytes"),
    ],
)
def test_bad_key_specs(spec, message):
    with pytest.raises(CodecKeyError, match=message):
        parse_keys(spec)


async def test_histories_are_encrypted_and_the_codec_server_decodes_them(temporal_server, task_queue):
    token = "codec-token-" + uuid.uuid4().hex
    settings = Settings(
        _env_file=None,
        temporal_address=temporal_server.address,
        temporal_task_queue=task_queue,
        payload_encryption_keys=SPEC,
        codec_server_token=token,
        codec_cors_origins=["http://localhost:8233"],
    )
    client = await temporal.connect(settings)
    workflow_id = f"diagnose-{uuid.uuid4()}"
    async with build_worker(client, settings):
        result = await client.execute_workflow(
            "Diagnose", {}, id=workflow_id, task_queue=task_queue, result_type=DiagnoseResult
        )
    assert any(check.name == "git" and check.ok for check in result.checks)

    # What Temporal stores (and the UI shows without the codec): ciphertext only.
    raw = await temporal.connect(Settings(_env_file=None, temporal_address=temporal_server.address))
    history = await raw.get_workflow_handle(workflow_id).fetch_history()
    completed = next(e for e in history.events if e.HasField("workflow_execution_completed_event_attributes"))
    stored = completed.workflow_execution_completed_event_attributes.result.payloads[0]
    assert stored.metadata["encoding"] == ENCODING and b"git version" not in stored.data

    body = json_format.MessageToJson(Payloads(payloads=[stored]))
    with UvicornThread(create_app(settings, temporal_client=client)) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            denied = await http.post("/codec/decode", content=body)
            wrong = await http.post("/codec/decode", content=body, headers={"Authorization": "Bearer nope"})
            decoded = await http.post(
                "/codec/decode", content=body, headers={"Authorization": f"Bearer {token}"}
            )
            malformed = await http.post(
                "/codec/decode", content=b"{not json", headers={"Authorization": f"Bearer {token}"}
            )
            preflight = await http.options(
                "/codec/decode",
                headers={
                    "Origin": "http://localhost:8233",
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
                },
            )
    assert denied.status_code == 401 and wrong.status_code == 401
    assert decoded.status_code == 200
    opened = json_format.Parse(decoded.content, Payloads()).payloads[0]
    assert b"git version" in opened.data
    assert malformed.status_code == 400 and "malformed payloads" in malformed.json()["reason"]
    assert (
        preflight.status_code == 200
        and preflight.headers["access-control-allow-origin"] == "http://localhost:8233"
    )


async def test_codec_endpoints_are_absent_when_encryption_is_off(base_settings):
    with UvicornThread(create_app(base_settings)) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.post("/codec/decode", content=b"{}")).status_code == 404
