"""Where credentials may go: origins, redirects and URL userinfo, as pure rules.

A credential (an ``Authorization`` or ``Cookie`` header, a client's ``auth``, the
``user:password@`` of a URL, any header the caller marked sensitive) is given for one
origin: the scheme, host and port of the URL it came with. The flows follow redirects
themselves and remember where they led, so these rules decide for every request whether
it may carry credentials:

* to the URL's own origin: yes;
* to the same host moved from ``http`` on port 80 to ``https`` on port 443 (an upgrade):
  yes, as httpx allows;
* anywhere else, including ``https`` to ``http`` on the same host (the credential would
  cross the network in clear text): no; and once a chain of redirects has left the
  origin, no later hop of that chain carries them, even one that comes back.

httpx applies the same rules to the redirects it follows (``Authorization`` dropped
across origins and on a downgrade); they are the floor here, not a variation.
"""

from __future__ import annotations

import base64

import httpx

from .errors import RedirectError

__all__ = [
    "CREDENTIAL_HEADERS",
    "basic_auth_header",
    "may_carry_credentials",
    "redirect_target",
    "same_origin",
    "split_userinfo",
]

# Headers that carry credentials to an origin. ``Cookie`` comes from the client's jar,
# which scopes it by domain itself; a Cookie header set by hand is dropped like the rest.
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme)


def same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    return _origin(a) == _origin(b)


def _is_upgrade(origin: httpx.URL, target: httpx.URL) -> bool:
    return (
        origin.host == target.host
        and origin.scheme == "http"
        and (origin.port or 80) == 80
        and target.scheme == "https"
        and (target.port or 443) == 443
    )


def may_carry_credentials(origin: httpx.URL, target: httpx.URL) -> bool:
    """Whether a request to ``target`` may carry credentials given for ``origin``."""
    return same_origin(origin, target) or _is_upgrade(origin, target)


def redirect_target(current: str, location: str) -> str:
    """The absolute URL a ``Location`` leads to from ``current``, or ``RedirectError``
    (malformed, or not http(s): a redirect must not reach ``file:`` or another scheme)."""
    try:
        target = httpx.URL(current).join(location.strip())
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise RedirectError(
            f"{_redacted(current)} redirected to an unusable Location {location!r}: {exc}",
            url=_redacted(current),
        ) from exc
    if target.scheme not in ("http", "https") or not target.host or not _port_ok(target):
        raise RedirectError(
            f"{_redacted(current)} redirected to {_redacted(str(target))!r}, which is not"
            " an http(s) URL",
            url=_redacted(current),
        )
    return str(target.copy_with(fragment=None))


def _port_ok(url: httpx.URL) -> bool:
    return url.port is None or 0 < url.port <= 65535


def split_userinfo(url: str) -> tuple[str, str | None]:
    """``url`` without its ``user:password@``, and that userinfo as a Basic
    ``Authorization`` value (None when the URL has none)."""
    if "@" not in url:  # the common case costs no parse
        return url, None
    parsed = httpx.URL(url)
    if not parsed.userinfo:
        return url, None
    header = basic_auth_header(parsed.username, parsed.password)  # both unquoted
    return str(parsed.copy_with(username=None, password=None)), header


def basic_auth_header(user: str, password: str) -> str:
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _redacted(url: str) -> str:
    """``url`` fit for a message: any userinfo replaced by ``***``."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        return url.split("@", 1)[-1] if "@" in url else url
    if not parsed.userinfo:
        return url
    return str(parsed.copy_with(username="***", password=None))
