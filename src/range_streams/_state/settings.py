"""Request options as every public object takes them: ``headers=``, ``auth=``, ``timeout=``
... beside the object's own keywords, or one ``client_options=ClientOptions(...)``.

``ClientOptions`` (``_net.options``) is the one set of request options. Most of them build
the client range-streams makes; ``follow_redirects`` and ``sensitive_headers`` are obeyed
by the flows themselves (``RemoteState``), so they apply to a caller's own client too.
A caller's client together with an option that only a client we make could honour
(``headers``, ``auth``, ``timeout``, ...) is refused: it would silently not be sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from .._core.protocol import RemoteState
from .._net.options import ClientOptions

__all__ = [
    "CLIENT_SETTINGS",
    "REMOTE_SETTINGS",
    "client_settings",
    "configure_remote",
    "remote_options",
    "resolve_client_options",
]

# Every ClientOptions field, by name.
CLIENT_SETTINGS = frozenset(ClientOptions.__dataclass_fields__)
# The ones the flows obey whatever the client: they need no client of ours.
REMOTE_SETTINGS = frozenset({"follow_redirects", "sensitive_headers"})


def client_settings(options: dict[str, Any], others: frozenset[str]) -> dict[str, Any]:
    """Take the ``ClientOptions`` keywords out of ``options``, which keeps the rest:
    ``others``' names, anything else being a TypeError that lists both."""
    unknown = sorted(set(options) - CLIENT_SETTINGS - others)
    if unknown:
        raise TypeError(
            f"unknown option(s) {', '.join(unknown)}; known: request options"
            f" ({', '.join(sorted(CLIENT_SETTINGS))}) and {', '.join(sorted(others))}"
        )
    return {name: options.pop(name) for name in list(options) if name in CLIENT_SETTINGS}


def resolve_client_options(
    client: httpx.Client | httpx.AsyncClient | None,
    client_options: ClientOptions | None,
    settings: Mapping[str, Any],
    owner: str,
) -> ClientOptions:
    """``client_options`` with ``settings`` applied; a TypeError if ``client`` is given
    with anything only a client of ours would honour."""
    if client_options is not None and not isinstance(client_options, ClientOptions):
        raise TypeError(
            f"client_options must be a range_streams.ClientOptions,"
            f" not {type(client_options).__name__}"
        )
    chosen = ClientOptions.of(client_options, **settings)
    if client is not None:
        defaults = ClientOptions()
        ignored = sorted(
            name
            for name in CLIENT_SETTINGS - REMOTE_SETTINGS
            if getattr(chosen, name) != getattr(defaults, name)
        )
        if ignored:
            raise TypeError(
                f"{owner} was given a client and {', '.join(ignored)}: those configure the"
                " client range-streams makes, so they would not reach your client; set them"
                " on your client, or leave client out"
            )
    return chosen


def configure_remote(remote: RemoteState, options: ClientOptions) -> RemoteState:
    """Make the flows for ``remote`` obey ``options``' redirect and credential rules."""
    remote.follow_redirects = options.follow_redirects
    remote.credential_headers = options.credential_headers
    return remote


def remote_options(options: ClientOptions) -> ClientOptions:
    """Only what of ``options`` the flows obey themselves: for a file on a client that was
    already made from ``options`` (the CLI's, hooked for ``--trace``)."""
    return ClientOptions(**{name: getattr(options, name) for name in REMOTE_SETTINGS})
