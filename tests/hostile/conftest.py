"""Certificates for the hostile servers: a throwaway CA (trustme) that the clients of a
test trust explicitly (``verify=client_tls``), never through the environment."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

import pytest

trustme = pytest.importorskip("trustme")


@pytest.fixture(scope="session")
def ca() -> Any:
    return trustme.CA()


@pytest.fixture(scope="session")
def client_tls(ca: Any) -> ssl.SSLContext:
    """What the clients verify with: the system's defaults, trusting only ``ca``."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture(scope="session")
def server_tls(ca: Any) -> Callable[..., ssl.SSLContext]:
    """A server context with a certificate from ``issuer`` (default: ``ca``) for
    ``names`` (default: localhost), with any other ``issue_cert`` settings."""

    made: dict[tuple[str, ...], ssl.SSLContext] = {}

    def make(*names: str, issuer: Any = None, **settings: Any) -> ssl.SSLContext:
        names = names or ("localhost",)
        plain = issuer is None and not settings
        if plain and names in made:  # the common one, made once: keys cost milliseconds
            return made[names]
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        (issuer or ca).issue_cert(*names, **settings).configure_cert(context)
        if plain:
            made[names] = context
        return context

    return make
