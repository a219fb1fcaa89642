"""POST /codec/encode and /codec/decode: the Temporal codec-server protocol, so the Web UI can show
encrypted payloads to operators who hold CODEC_SERVER_TOKEN (Web UI → Settings → Codec Server:
endpoint `https://<api>/codec`, "pass access token").

Only mounted when payload encryption and the token are configured. Answers: missing/wrong bearer
token 401, malformed body 400 (with the reason), a payload sealed with an unknown key or tampered
with 400, otherwise 200 with `{"payloads": [...]}` in protobuf JSON, as the UI expects.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from contracts.codec import CodecKeyError, EncryptionCodec

router = APIRouter(prefix="/codec")


def _authorised(request: Request) -> bool:
    token = request.app.state.settings.codec_server_token.get_secret_value()
    given = request.headers.get("authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


async def _apply(request: Request, decode: bool) -> Response:
    if not _authorised(request):
        return JSONResponse({"status": "rejected", "reason": "missing or invalid bearer token"}, 401)
    codec: EncryptionCodec = request.app.state.codec
    try:
        payloads = json_format.Parse(await request.body(), Payloads())
    except (json_format.ParseError, UnicodeDecodeError, ValueError) as exc:
        return JSONResponse({"status": "rejected", "reason": f"malformed payloads: {str(exc)[:200]}"}, 400)
    try:
        result = await (codec.decode if decode else codec.encode)(list(payloads.payloads))
    except CodecKeyError as exc:
        return JSONResponse({"status": "rejected", "reason": str(exc)}, 400)
    body = json_format.MessageToJson(Payloads(payloads=result))
    return Response(body, media_type="application/json")


@router.post("/decode")
async def decode(request: Request) -> Response:
    return await _apply(request, decode=True)


@router.post("/encode")
async def encode(request: Request) -> Response:
    return await _apply(request, decode=False)
