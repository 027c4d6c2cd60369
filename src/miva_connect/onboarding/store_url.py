"""Turn what a merchant pastes into the store's JSON API endpoint, or say why not.

Accepted: `host/mm5/json.mvc` without a scheme, `.../mm5`, `.../mm5/`,
`.../mm5/admin.mvc?...`; all become `https://host/mm5/json.mvc`.

What the URL shows is judged here with the same `AddressPolicy` the HTTP client's guard
applies (scheme, port, IP literals), so a merchant hears at once what is refused as
written. Host names are only judged after resolution, by the guard, on every request.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit, urlunsplit

import idna

from miva_connect.egress import DEFAULT_PORTS, AddressPolicy, embedded_ipv4

MAX_URL_LENGTH = 2048
DEFAULT_FOLDER = "mm5"
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_SEGMENT = re.compile(r"^[A-Za-z0-9._~%!$&'()*+,;=:@-]+$")
# Hosts that getaddrinfo reads as IPv4 although they are not dotted quads
# (2130706433, 0x7f000001, 127.1, 0177.0.0.1): refuse them as names.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$")


class StoreUrlError(ValueError):
    """`code` is `invalid_store_url` or `store_url_not_allowed`; `reason` says why."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def normalise_store_url(raw: str, *, policy: AddressPolicy) -> str:
    """The `https://host[:port]/<folder>/json.mvc` endpoint for a pasted URL."""
    text = raw.strip()
    if not text or len(text) > MAX_URL_LENGTH or any(c.isspace() or ord(c) < 32 for c in text):
        raise StoreUrlError("invalid_store_url", "empty, too long, or contains spaces")
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise StoreUrlError("invalid_store_url", "malformed URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise StoreUrlError("invalid_store_url", "the URL must start with https://")
    if "@" in parts.netloc:
        raise StoreUrlError("store_url_not_allowed", "it contains a user name or password")
    host = _host(parts.hostname or "")
    _check_policy(scheme, host, port, policy)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    endpoint = urlunsplit((scheme, netloc, _endpoint_path(parts.path), "", ""))
    if len(endpoint) > MAX_URL_LENGTH:
        raise StoreUrlError("invalid_store_url", "too long")
    return endpoint


def _host(hostname: str) -> str:
    host = hostname.rstrip(".")
    if not host:
        raise StoreUrlError("invalid_store_url", "no host name")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        return _literal(address)
    try:
        # IDNA 2008 with UTS 46 mapping: the rules httpx applies when it connects.
        host = idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        raise StoreUrlError("invalid_store_url", "the host name is not valid") from None
    if len(host) > 253 or not all(_LABEL.match(label) for label in host.split(".")):
        raise StoreUrlError("invalid_store_url", "the host name is not valid")
    return host


def _literal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """An IP literal in one canonical spelling, so one host cannot pose as many."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            raise StoreUrlError("invalid_store_url", "a zone id is not allowed")
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        if embedded_ipv4(address):
            raise StoreUrlError(
                "store_url_not_allowed", "write an IPv4 address as it is, not inside IPv6"
            )
    return str(address)


def _check_policy(scheme: str, host: str, port: int | None, policy: AddressPolicy) -> None:
    if not policy.allows_scheme(scheme):
        raise StoreUrlError("store_url_not_allowed", "it must use https://")
    if not policy.allows_port(DEFAULT_PORTS[scheme] if port is None else port):
        raise StoreUrlError("store_url_not_allowed", "that port is not allowed")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        if not policy.is_allowed(address):
            raise StoreUrlError("store_url_not_allowed", "it is not a public address")
    elif policy.allow_private:
        return
    elif host == "localhost" or host.endswith(".localhost") or _NUMERIC_HOST.match(host):
        raise StoreUrlError("store_url_not_allowed", "it is not a public host name")


def _endpoint_path(path: str) -> str:
    segments = [s for s in path.split("/") if s]
    if any(s in (".", "..") or not _SEGMENT.match(s) for s in segments):
        raise StoreUrlError("invalid_store_url", "the path is not valid")
    if segments and segments[-1].lower().endswith(".mvc"):
        segments[-1] = "json.mvc"
    elif segments:
        segments.append("json.mvc")
    else:
        segments = [DEFAULT_FOLDER, "json.mvc"]
    return "/" + "/".join(segments)
