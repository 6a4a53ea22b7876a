"""Calls the service makes to addresses its callers chose (webhooks), made safe.

A caller-supplied URL must not turn the service into a proxy into its own network: the
host is resolved, and every address it resolves to must be public (not loopback,
private, carrier-grade NAT, link-local and cloud metadata, unique-local, multicast,
reserved or unspecified, nor an IPv4-mapped IPv6 form of those) unless the operator
named the host in ``webhook_allow_hosts``. Numeric spellings such as ``2130706433``,
``0x7f.1`` or ``017700000001`` resolve to 127.0.0.1 like the dotted form and are refused
the same way.

The connection then goes to the address that was checked (no second lookup a DNS
rebinding could answer differently), with the original ``Host`` header and, for https,
the original name for SNI and certificate checks. Redirects are never followed and
proxies from the environment are ignored (either would send the call elsewhere).

The receiver is a stranger, so it must not hold a worker's memory or time either: the
answer is streamed and only its status and first ``MAX_ANSWER_BYTES`` (undecoded) are
read before the connection is closed, so a huge body costs no memory; and the whole call
runs under one deadline, not httpx's per-read timeouts, which a receiver dripping a byte
at a time (headers or body) would reset forever. The caller's own deadline
(``Outbox.try_once``) also covers the address check: a name whose lookup hangs is given
up at the deadline (the lookup thread is abandoned, not waited for).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx

from stepaudio.errors import InvalidParameter

MAX_URL_CHARS = 2048
MAX_ANSWER_BYTES = 4096
"""How much of a receiver's answer body is read; the rest is never received."""
# Blocks no ``is_*`` property of ``ipaddress`` covers on every Python version we run.
_EXTRA_BLOCKED = (
    ipaddress.ip_network("100.64.0.0/10"),  # carrier-grade NAT (RFC 6598)
    ipaddress.ip_network("64:ff9b::/96"),  # NAT64: embeds an IPv4 address
    ipaddress.ip_network("2002::/16"),  # 6to4: embeds an IPv4 address
)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeURL(InvalidParameter):
    """The URL is not an http(s) URL, does not resolve, or reaches a non-public address."""


@dataclass(frozen=True)
class Answer:
    """What was read of a receiver's answer: its status and the body's first bytes."""

    status_code: int
    head: bytes
    """At most ``MAX_ANSWER_BYTES`` of the body, as sent (not decompressed)."""

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


@dataclass(frozen=True)
class Target:
    """A checked URL and the address to connect to for it."""

    url: str
    scheme: str
    host: str
    port: int
    address: str

    @property
    def pinned_url(self) -> str:
        """The URL with the checked address in place of the host name."""
        parts = urlsplit(self.url)
        ip = ipaddress.ip_address(self.address)
        host = f"[{ip}]" if ip.version == 6 else str(ip)
        return urlunsplit((parts.scheme, f"{host}:{self.port}", parts.path or "/", parts.query, ""))

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def is_public(address: Address) -> bool:
    """Whether ``address`` is reachable on the internet, not something of ours."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public(address.ipv4_mapped)
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
        or any(address in net for net in _EXTRA_BLOCKED if net.version == address.version)
    )


def _refuse(message: str) -> UnsafeURL:
    return UnsafeURL(message, param="webhook_url", code="webhook_url_refused")


def check_url(url: str, allow_hosts: list[str]) -> Target:
    """Parse, resolve and check ``url`` (blocking: it looks the host up)."""
    if len(url) > MAX_URL_CHARS:
        raise _refuse(f"webhook_url is longer than {MAX_URL_CHARS} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:
        raise _refuse(f"webhook_url is not a valid URL: {exc}.") from None
    if parts.scheme not in ("http", "https") or not host:
        raise _refuse("webhook_url must be an http(s) URL.")
    if parts.username is not None or parts.password is not None:
        raise _refuse("webhook_url must not carry credentials.")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise _refuse(f"webhook_url's host {host!r} does not resolve.") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise _refuse(f"webhook_url's host {host!r} does not resolve.")
    allowed = host.lower() in {h.lower().strip("[]") for h in allow_hosts}
    # Every address must be public: one public record beside a private one would let a
    # later lookup (or the connection's own choice) reach the private one.
    if not allowed and not all(is_public(a) for a in addresses):
        raise _refuse(
            "webhook_url must reach a public address (loopback, private, link-local and "
            "similar addresses are refused unless the operator allows the host)."
        )
    return Target(url, parts.scheme, host, port, str(addresses[0]))


async def check_url_async(url: str, allow_hosts: list[str]) -> Target:
    """``check_url`` in a worker thread; a cancelled caller (its deadline passed) does not
    wait for a hanging lookup, which finishes on its own and is ignored."""
    return await anyio.to_thread.run_sync(check_url, url, allow_hosts, abandon_on_cancel=True)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``HMAC-SHA256(secret, f"{timestamp}.{body}")`` in hex: what a receiver recomputes."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(secret: str, event: str, event_id: str, body: bytes) -> dict[str, str]:
    timestamp = int(time.time())
    return {
        "Content-Type": "application/json",
        "User-Agent": "stepaudio-webhook",
        "X-Stepaudio-Event": event,
        "X-Stepaudio-Event-Id": event_id,
        "X-Stepaudio-Timestamp": str(timestamp),
        "X-Stepaudio-Signature": "sha256=" + signature(secret, timestamp, body),
    }


async def post_pinned(
    target: Target, body: bytes, headers: dict[str, str], deadline_s: float
) -> Answer:
    """POST ``body`` to the checked address of ``target`` (see the module's docstring):
    connecting, sending and reading the answer's head all within ``deadline_s``
    (``TimeoutError`` past it)."""
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    with anyio.fail_after(deadline_s):
        async with httpx.AsyncClient(
            timeout=deadline_s, follow_redirects=False, trust_env=False
        ) as client:
            request = client.build_request(
                "POST",
                target.pinned_url,
                content=body,
                headers={**headers, "Host": target.host_header},
                extensions=extensions,
            )
            response = await client.send(request, stream=True)
            try:
                head = await read_head(response, MAX_ANSWER_BYTES)
            finally:
                await response.aclose()  # the rest of the body is never received
            return Answer(response.status_code, head)


async def read_head(response: httpx.Response, limit: int) -> bytes:
    """The first ``limit`` bytes of a streamed ``response``'s body, as sent."""
    head = bytearray()
    async for chunk in response.aiter_raw():
        head += chunk[: limit - len(head)]
        if len(head) >= limit:
            break
    return bytes(head)
