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

    def make(*names: str, issuer: Any = None, **settings: Any) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        (issuer or ca).issue_cert(*(names or ("localhost",)), **settings).configure_cert(context)
        return context

    return make
