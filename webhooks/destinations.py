"""Where webhooks may be sent: no request forgery against the city's own network.

A destination is an http(s) URL without credentials. Its host is resolved on every attempt and
every address it resolves to is checked: allowed when the URL's host[:port] or the address
matches an entry of TSUNAGU_WEBHOOK_ALLOWED_HOSTS (comma-separated `host`, `host:port` or CIDR),
otherwise refused when it is loopback, private, link-local, multicast, reserved or unspecified.
The sender then connects to exactly the addresses checked here, so a name that resolves
differently a moment later (DNS rebinding) changes nothing.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., list]


class UnsafeDestination(Exception):
    """The URL may not be used (bad form, or its host resolves to an address that is not allowed)."""


class Unresolvable(UnsafeDestination):
    """The host does not resolve (now): refused for an attempt, accepted for a new subscription."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written in the URL, lower-case, without IPv6 brackets
    port: int
    path: str  # path and query, at least "/"

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True)
class Allowed:
    hosts: frozenset[tuple[str, int | None]]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    def host_allowed(self, host: str, port: int) -> bool:
        return (host, None) in self.hosts or (host, port) in self.hosts

    def address_allowed(self, address: Address, port: int) -> bool:
        return any(address in net for net in self.networks) or self.host_allowed(str(address), port)


NOTHING_ALLOWED = Allowed(frozenset(), ())


def parse_allowed(text: str | None) -> Allowed:
    """TSUNAGU_WEBHOOK_ALLOWED_HOSTS: e.g. "127.0.0.1:8080, hooks.internal, 10.20.0.0/16, [::1]:9000"."""
    hosts: set[tuple[str, int | None]] = set()
    networks = []
    for raw in (text or "").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        host, port = entry, None
        if entry.startswith("["):
            host, _, rest = entry[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
        elif entry.count(":") == 1:
            name, _, number = entry.partition(":")
            if not number.isdigit():
                raise ValueError(f"TSUNAGU_WEBHOOK_ALLOWED_HOSTS: bad entry {raw.strip()!r}")
            host, port = name, int(number)
        hosts.add((host, port))
    return Allowed(frozenset(hosts), tuple(networks))


def parse_url(url: object) -> Target:
    """The URL's parts, or UnsafeDestination saying what is wrong with it."""
    if not isinstance(url, str) or not url.strip():
        raise UnsafeDestination("URL is required")
    if len(url) > 2000:
        raise UnsafeDestination("URL is too long (at most 2000 characters)")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeDestination(f"URL is malformed ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeDestination("only http and https URLs are allowed")
    if parts.username is not None or parts.password is not None:
        raise UnsafeDestination("credentials in the URL are not allowed")
    if not parts.hostname:
        raise UnsafeDestination("URL has no host")
    if any(c.isspace() for c in url.strip()):
        raise UnsafeDestination("URL contains white space")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, parts.hostname.lower(), port or (443 if parts.scheme == "https" else 80), path)


def _forbidden(address: Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _forbidden(address.ipv4_mapped)
    for label, flag in (("loopback", address.is_loopback), ("link-local", address.is_link_local),
                        ("multicast", address.is_multicast), ("unspecified", address.is_unspecified),
                        ("reserved", address.is_reserved), ("private", address.is_private),
                        ("not globally reachable", not address.is_global)):
        if flag:
            return label
    return None


def resolve(target: Target, allowed: Allowed, resolver: Resolver = socket.getaddrinfo) -> list[str]:
    """The addresses to connect to, every one of them checked; UnsafeDestination if the host does
    not resolve or any address it resolves to is not allowed."""
    try:
        literal = ipaddress.ip_address(target.host)
    except ValueError:
        literal = None
    if literal is not None:
        found = [literal]
    else:
        try:
            infos = resolver(target.host, target.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise Unresolvable(f"host {target.host} does not resolve ({exc})") from None
        found = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))
        if not found:
            raise Unresolvable(f"host {target.host} does not resolve")
    if allowed.host_allowed(target.host, target.port):
        return [str(a) for a in found]
    for address in found:
        reason = _forbidden(address)
        if reason and not allowed.address_allowed(address, target.port):
            raise UnsafeDestination(f"{target.host} resolves to {address}, a {reason} address, which is not "
                                    "allowed (add it to TSUNAGU_WEBHOOK_ALLOWED_HOSTS if it is meant)")
    return [str(a) for a in found]


def check_for_subscription(url: object, allowed: Allowed, resolver: Resolver = socket.getaddrinfo) -> Target:
    """At subscription time: the URL's form, and its addresses if the host resolves now (a name that
    does not resolve yet is accepted; every attempt checks again)."""
    target = parse_url(url)
    with contextlib.suppress(Unresolvable):
        resolve(target, allowed, resolver)
    return target
