"""Ingress controls in front of the app: the path allowlist and the webhook's IP allowlist.

* A path the app does not serve gets 404 here, logged as `path_rejected` (scanners show up in the
  logs, and nothing behind this middleware runs for them).
* `POST /webhook` from a client outside `WEBHOOK_IP_ALLOWLIST` (CIDRs; empty: any) gets 403, logged
  as `webhook_ip_rejected`. The client is the TCP peer, unless the peer is one of `TRUSTED_PROXIES`:
  then it is the rightmost address of `X-Forwarded-For` that is not a trusted proxy (each proxy
  appends the address it saw, so everything left of the first untrusted hop was written by the
  client and proves nothing). `X-Forwarded-For` from any other peer is ignored. A header that is
  malformed (a hop that is not an IP address, `unknown`, an obfuscated name) or oversized when it has
  to be read means the client is unknown: refused while an allowlist is set.

The peer must be the real one: uvicorn's own proxy-header handling (on by default for 127.0.0.1)
rewrites it from X-Forwarded-For before the app sees it, so the API runs with `--no-proxy-headers`
(Dockerfile, compose, Helm, devenv) and TRUSTED_PROXIES takes its place.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Iterable, Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from telemetry import audit, metrics

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_FORWARDED_BYTES = 4096  # a real chain is a few hops of at most 47 characters each
MAX_FORWARDED_HOPS = 32
WEBHOOK = "/webhook"


def networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def parse_address(text: str) -> Address | None:
    """An IP address as peers and proxies write it: bare, `v4:port`, `[v6]` or `[v6]:port`; IPv4-mapped
    IPv6 (`::ffff:192.0.2.1`, as a dual-stack socket reports IPv4 peers) as the IPv4 address."""
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        if end == -1 or (text[end + 1 :] and not text[end + 1 :].startswith(":")):
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # IPv4 with a port (an IPv6 address has at least two colons)
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _within(address: Address, nets: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in nets)


def client_address(
    peer: str | None, forwarded: Sequence[bytes], trusted: Sequence[Network]
) -> tuple[Address | None, str]:
    """(the client's address, "") or (None, why it cannot be known)."""
    address = parse_address(peer) if peer else None
    if address is None:
        return None, "peer address unknown"
    if not forwarded or not _within(address, trusted):
        return address, ""
    joined = b",".join(forwarded)
    if len(joined) > MAX_FORWARDED_BYTES:
        return None, "X-Forwarded-For too long"
    hops = joined.decode("latin-1").split(",")
    if len(hops) > MAX_FORWARDED_HOPS:
        return None, "X-Forwarded-For has too many hops"
    for hop in reversed(hops):
        address = parse_address(hop)
        if address is None:
            return None, "malformed X-Forwarded-For"
        if not _within(address, trusted):
            return address, ""
    return address, ""  # every hop is a trusted proxy: the leftmost one is the client


def scope_client(scope: Scope, trusted: Sequence[Network]) -> tuple[Address | None, str]:
    client = scope.get("client")
    forwarded = [value for name, value in scope.get("headers") or () if name == b"x-forwarded-for"]
    return client_address(client[0] if client else None, forwarded, trusted)


class IngressGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        paths: Iterable[str],
        allowlist: Sequence[Network] = (),
        trusted_proxies: Sequence[Network] = (),
    ) -> None:
        self.app = app
        self.paths = frozenset(paths)
        self.allowlist = tuple(allowlist)
        self.trusted = tuple(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path not in self.paths:
            audit.event("path_rejected", method=scope.get("method"), path=path, peer=_peer(scope))
            await _answer(send, 404, {"detail": "Not Found"})
            return
        if self.allowlist and path == WEBHOOK:
            client, problem = scope_client(scope, self.trusted)
            if client is None or not _within(client, self.allowlist):
                audit.event(
                    "webhook_ip_rejected",
                    logging.WARNING,
                    client=client,
                    peer=_peer(scope),
                    reason=problem or "client not in WEBHOOK_IP_ALLOWLIST",
                )
                body = await _answer(
                    send, 403, {"status": "rejected", "reason": "client address not allowed"}
                )
                metrics.record_delivery(body)
                return
        await self.app(scope, receive, send)


def _peer(scope: Scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


async def _answer(send: Send, status: int, payload: dict[str, str]) -> bytes:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
    return body
