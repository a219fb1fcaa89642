"""One-shot set-up of a Temporal namespace for this service (Helm hook, compose, `make temporal`).

Idempotent: registers the custom search attributes that are missing and creates or updates the
polling Schedules. Waits for Temporal to come up first, since a hook may start before the server.
"""

from __future__ import annotations

import asyncio
import logging

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType

from contracts import temporal
from contracts.settings import Settings

log = logging.getLogger("bootstrap")

_INDEXED = {
    SearchAttributeIndexedValueType.KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    SearchAttributeIndexedValueType.INT: IndexedValueType.INDEXED_VALUE_TYPE_INT,
}


async def _connect_with_patience(settings: Settings, attempts: int = 60) -> Client:
    for attempt in range(1, attempts + 1):
        try:
            return await temporal.connect(settings)
        except RuntimeError as exc:
            log.info(
                "waiting for Temporal at %s (%d/%d): %s", settings.temporal_address, attempt, attempts, exc
            )
            await asyncio.sleep(2)
    raise SystemExit(f"Temporal at {settings.temporal_address} did not answer")


async def register_search_attributes(client: Client, namespace: str) -> list[str]:
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    known = set(existing.custom_attributes) | set(existing.system_attributes)
    missing = {
        key.name: _INDEXED[key.indexed_value_type]
        for key in temporal.SEARCH_ATTRIBUTES
        if key.name not in known
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    return sorted(missing)


async def bootstrap(settings: Settings) -> None:
    client = await _connect_with_patience(settings)
    added = await register_search_attributes(client, settings.temporal_namespace)
    log.info("search attributes registered: %s", ", ".join(added) or "all present already")
