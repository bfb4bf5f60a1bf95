"""Outbound HTTP for webhooks and other integrations: signed, time-limited, and
kept away from internal addresses (server-side request forgery).

Every address the host name resolves to is checked immediately before the
request, redirects are never followed, and the request has a hard timeout.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from kefu.api.errors import ValidationFailed

SIGNATURE_VERSION = "v1"


class DestinationRefused(ValueError):
    """The URL is malformed or points at an address this tenant may not reach."""


@dataclass(frozen=True)
class OutboundResult:
    status: int
    latency_ms: int


def _is_internal(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def check_destination(url: str, *, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DestinationRefused("must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise DestinationRefused("must not contain credentials")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DestinationRefused(f"host {parts.hostname} does not resolve") from exc
    internal = sorted({info[4][0] for info in infos if _is_internal(info[4][0])})
    if internal and not allow_private:
        raise DestinationRefused(
            f"resolves to a private or internal address ({', '.join(internal)}); "
            "a platform admin can allow private addresses for this tenant"
        )


def validate_destination(url: str, *, allow_private: bool, field: str = "url") -> None:
    try:
        check_destination(url, allow_private=allow_private)
    except DestinationRefused as exc:
        raise ValidationFailed(field, str(exc)) from exc


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`v1=<hex HMAC-SHA256 over "<timestamp>.<body>">`, as docs/webhooks.md describes."""
    message = str(timestamp).encode() + b"." + body
    return f"{SIGNATURE_VERSION}={hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()}"


def post(
    url: str, body: bytes, headers: dict[str, str], *, timeout: float, allow_private: bool
) -> OutboundResult:
    """POST without following redirects; raises OSError/DestinationRefused on failure."""
    check_destination(url, allow_private=allow_private)
    parts = urlsplit(url)
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    started = time.perf_counter()
    try:
        connection.request(
            "POST",
            path,
            body=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "Kefu-Webhooks/1",
                **headers,
            },
        )
        response = connection.getresponse()
        response.read(64 * 1024)
        return OutboundResult(response.status, int((time.perf_counter() - started) * 1000))
    finally:
        connection.close()
