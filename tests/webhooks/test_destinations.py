"""Request forgery: which destinations a webhook may have, checked after name resolution."""

from __future__ import annotations

import socket

import pytest

from webhooks.destinations import NOTHING_ALLOWED, UnsafeDestination, parse_allowed, parse_url, resolve


def resolver(*addresses: str):  # noqa: ANN201
    """A name server that answers with these addresses (a stand-in for DNS, which tests have not)."""
    def answer(host: str, port: int, type: int = 0):  # noqa: A002, ANN202
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in addresses]
    return answer


@pytest.mark.parametrize("url, why", [
    ("ftp://hooks.example.org/x", "http and https"),
    ("file:///etc/passwd", "http and https"),
    ("https://user:pw@hooks.example.org/", "credentials"),
    ("https:///nohost", "no host"),
    ("http://[::1", "malformed"),
    ("", "required"),
])
def test_malformed_urls_are_refused(url: str, why: str) -> None:
    with pytest.raises(UnsafeDestination, match=why):
        parse_url(url)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254",
                                     "0.0.0.0", "224.0.0.1", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1",
                                     "100.64.0.1"])
def test_internal_addresses_are_refused_after_resolution(address: str) -> None:
    target = parse_url("https://hooks.example.org/tsunagu")
    with pytest.raises(UnsafeDestination, match="not allowed"):
        resolve(target, NOTHING_ALLOWED, resolver("8.8.8.8", address))


def test_a_public_address_is_allowed_and_is_what_the_sender_connects_to() -> None:
    target = parse_url("https://hooks.example.org:8443/in?x=1")
    assert resolve(target, NOTHING_ALLOWED, resolver("8.8.8.8")) == ["8.8.8.8"]
    assert (target.host_header, target.path) == ("hooks.example.org:8443", "/in?x=1")


def test_literal_loopback_needs_an_allowed_hosts_entry() -> None:
    target = parse_url("http://127.0.0.1:9000/hook")
    with pytest.raises(UnsafeDestination, match="loopback"):
        resolve(target, NOTHING_ALLOWED)
    assert resolve(target, parse_allowed("127.0.0.1")) == ["127.0.0.1"]
    assert resolve(target, parse_allowed("127.0.0.0/8")) == ["127.0.0.1"]
    assert resolve(target, parse_allowed("127.0.0.1:9000")) == ["127.0.0.1"]
    with pytest.raises(UnsafeDestination):
        resolve(target, parse_allowed("127.0.0.1:9001"))


def test_allowed_host_names_and_networks() -> None:
    allowed = parse_allowed(" hooks.internal , 10.20.0.0/16, [::1]:9000 ")
    assert resolve(parse_url("https://hooks.internal/x"), allowed, resolver("10.9.9.9")) == ["10.9.9.9"]
    assert resolve(parse_url("https://other.internal/x"), allowed, resolver("10.20.3.4")) == ["10.20.3.4"]
    with pytest.raises(UnsafeDestination):
        resolve(parse_url("https://other.internal/x"), allowed, resolver("10.20.3.4", "10.21.0.1"))
    assert resolve(parse_url("http://[::1]:9000/"), allowed) == ["::1"]
    with pytest.raises(ValueError):
        parse_allowed("host:port")


def test_a_name_that_does_not_resolve_is_refused_at_delivery() -> None:
    def fail(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise socket.gaierror(-2, "Name or service not known")
    with pytest.raises(UnsafeDestination, match="does not resolve"):
        resolve(parse_url("https://nowhere.invalid/"), NOTHING_ALLOWED, fail)
