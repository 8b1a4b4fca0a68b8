"""Network addresses as settings write them: `host:port`, an http(s) base address,
IP networks. Each is read with a ValueError that says what is wrong."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def split_host_port(address: str) -> tuple[str, int]:
    """`host:port` (`[::1]:9464` for IPv6) → (host, port); ValueError naming what is wrong."""
    example = "such as 127.0.0.1:9464, 0.0.0.0:9464 or [::1]:9464"
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or any(c.isspace() for c in address):
        raise ValueError(f"{address!r} is not host:port, {example}")
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    if ":" in host and not bracketed:
        raise ValueError(f"{address!r}: write an IPv6 host in brackets, {example}")
    if bracketed:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{address!r}: {host!r} in brackets is not an IPv6 address") from None
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"{address!r}: the port {port_text!r} is not a number ({example})") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"{address!r}: the port must be between 1 and 65535")
    return host, port


def http_base_url(url: str) -> str:
    """An http:// or https:// address with no query or fragment, without its trailing
    slash; ValueError naming what is wrong."""
    problem = f"{url!r} is not an http:// or https:// address such as https://temporal.example.com"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        raise ValueError(problem) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise ValueError(problem)
    if parts.query or parts.fragment:
        raise ValueError(f"{url!r} has a query or fragment; give the UI's base address only")
    return url.rstrip("/")


def ip_networks(value: str) -> tuple[IPNetwork, ...]:
    """Comma-separated IP addresses or CIDR networks; ValueError naming the entry that is neither."""
    networks = []
    for number, entry in enumerate(value.split(","), start=1):
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"entry {number}, {entry.strip()!r}, is not an IP address or CIDR network"
            ) from None
    return tuple(networks)
