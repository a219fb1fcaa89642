"""Optional encryption of workflow payloads at rest (AES-256-GCM, keys by ID so they can rotate).

With PAYLOAD_ENCRYPTION_KEYS set, every payload the service writes to Temporal (MR titles, findings,
summaries) is stored as `binary/encrypted` with the ID of the key that sealed it; decoding picks the
key by that ID, so a new key can be made active while old histories stay readable. The Web UI shows
ciphertext unless it is pointed at the API's codec endpoint (`/codec`, see api/codec.py), which
decodes for operators holding CODEC_SERVER_TOKEN.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, PayloadCodec

from contracts.settings import Settings

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
_NONCE = 12


class CodecKeyError(ValueError):
    pass


def parse_keys(spec: str) -> dict[str, bytes]:
    """`kid:base64key,kid2:base64key` → {kid: 32-byte key}; a clear error for anything else."""
    keys: dict[str, bytes] = {}
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        kid, sep, encoded = item.partition(":")
        if not sep or not kid:
            raise CodecKeyError("each key must be KEY_ID:BASE64_KEY")
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise CodecKeyError(f"key {kid!r} is not valid base64") from None
        if len(key) != 32:
            raise CodecKeyError(f"key {kid!r} must be 32 bytes (AES-256), got {len(key)}")
        keys[kid] = key
    if not keys:
        raise CodecKeyError("no keys given")
    return keys


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: dict[str, bytes], active: str | None = None) -> None:
        if not keys:
            raise CodecKeyError("no keys given")
        self.active = active or next(iter(keys))
        if self.active not in keys:
            raise CodecKeyError(f"active key {self.active!r} is not among the keys")
        self._ciphers = {kid: AESGCM(key) for kid, key in keys.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        cipher = self._ciphers[self.active]
        sealed = []
        for payload in payloads:
            nonce = os.urandom(_NONCE)
            data = nonce + cipher.encrypt(nonce, payload.SerializeToString(), self.active.encode())
            sealed.append(Payload(metadata={"encoding": ENCODING, KEY_ID: self.active.encode()}, data=data))
        return sealed

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        opened = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                opened.append(payload)  # written before encryption was switched on
                continue
            kid = payload.metadata.get(KEY_ID, b"").decode()
            cipher = self._ciphers.get(kid)
            if cipher is None:
                raise CodecKeyError(f"payload sealed with unknown key {kid!r}")
            try:
                plain = cipher.decrypt(payload.data[:_NONCE], payload.data[_NONCE:], kid.encode())
            except InvalidTag:
                raise CodecKeyError(f"payload sealed with key {kid!r} failed authentication") from None
            opened.append(Payload.FromString(plain))
        return opened


def codec_from_settings(settings: Settings) -> EncryptionCodec | None:
    if settings.payload_encryption_keys is None or not settings.payload_encryption_keys.get_secret_value():
        return None
    keys = parse_keys(settings.payload_encryption_keys.get_secret_value())
    return EncryptionCodec(keys, settings.payload_encryption_key_id or None)


def with_codec(converter: DataConverter, codec: PayloadCodec | None) -> DataConverter:
    return dataclasses.replace(converter, payload_codec=codec) if codec else converter
