"""How to reach a server: the options every client range-streams makes is built from.

``ClientOptions`` holds plain values only (headers, credentials, timeouts, TLS settings,
proxy), so anything configured with it pickles and can be shipped to another process
(Dask workers, fsspec filesystems); the live client is made from it where it is used.

TLS contexts follow httpx's rules (``verify=True``: the CA bundle of ``SSL_CERT_FILE`` or
``SSL_CERT_DIR`` when ``trust_env``, else certifi's; ``verify=False``: no verification; a
path: that bundle or directory; an ``ssl.SSLContext``: used as given) and are read when
a client is made, as httpx reads them. Loading a bundle parses every certificate in it,
far more work than making a client, so a context is kept and reused while the files it
was loaded from are unchanged (same path, size and modification time).
"""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from .._core.origins import CREDENTIAL_HEADERS

__all__ = [
    "DEFAULT_TIMEOUT",
    "CertTypes",
    "ClientOptions",
    "TLSSource",
    "VerifyTypes",
    "tls_context",
    "tls_source",
]

# A stalled body must end in a ReadTimeout, never a hang; connecting is quick or broken.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)

VerifyTypes = bool | str | os.PathLike[str] | ssl.SSLContext
CertTypes = str | tuple[str, str] | tuple[str, str, str]


@dataclass(frozen=True)
class ClientOptions:
    """What a client range-streams makes is configured with.

    ``headers`` go with every request to the file's own origin. ``auth`` is a
    ``(user, password)`` pair (Basic) or an ``httpx.Auth``; like an ``Authorization``
    header, a ``Cookie`` header and every name in ``sensitive_headers``, it is never sent
    to another origin a redirect leads to, nor over ``http`` after ``https``.
    ``follow_redirects=False`` makes a redirect an error (``RedirectError``) instead.
    ``http2=True`` uses httpx's own transport (HTTP/2 needs the ``h2`` package); the
    library's HTTP/1.1 transport is used otherwise, refusing a response head (1xx heads
    before it included) longer than ``max_head_bytes`` however it arrives (httpcore's
    limit: 100 KiB).
    """

    headers: Mapping[str, str] = field(default_factory=dict)
    auth: tuple[str, str] | httpx.Auth | None = None
    timeout: float | httpx.Timeout | None = field(default_factory=lambda: DEFAULT_TIMEOUT)
    verify: VerifyTypes = True
    cert: CertTypes | None = None
    trust_env: bool = True
    follow_redirects: bool = True
    http2: bool = False
    proxy: str | None = None
    sensitive_headers: frozenset[str] = frozenset()
    max_head_bytes: int = 100 * 1024

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", dict(self.headers))
        names = frozenset(name.lower() for name in self.sensitive_headers)
        object.__setattr__(self, "sensitive_headers", names)
        if isinstance(self.max_head_bytes, bool) or not isinstance(self.max_head_bytes, int):
            raise TypeError(f"max_head_bytes must be an int, not {self.max_head_bytes!r}")
        if self.max_head_bytes < 1024:
            raise ValueError(f"max_head_bytes must be at least 1024, not {self.max_head_bytes}")
        if self.auth is not None and not isinstance(self.auth, (tuple, httpx.Auth)):
            raise TypeError(
                f"auth is a (user, password) pair or an httpx.Auth, not {type(self.auth).__name__}"
            )

    @classmethod
    def of(cls, options: ClientOptions | None = None, **overrides: Any) -> ClientOptions:
        """``options`` (or the defaults) with ``overrides`` applied; unknown names are a
        TypeError that lists the known ones."""
        known = cls.__dataclass_fields__
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise TypeError(
                f"unknown client option(s) {', '.join(unknown)}; known: {', '.join(known)}"
            )
        base = options if options is not None else cls()
        if not overrides:
            return base
        values = {name: getattr(base, name) for name in known}
        values.update(overrides)
        return cls(**values)

    @property
    def credential_headers(self) -> frozenset[str]:
        """Header names (lowercased) dropped from a request that leaves the origin."""
        return CREDENTIAL_HEADERS | self.sensitive_headers

    def tls(self) -> TLSSource:
        """What makes this client's TLS context (the environment read now)."""
        return tls_source(self.verify, self.cert, self.trust_env)

    def timeout_value(self) -> httpx.Timeout:
        return (
            self.timeout if isinstance(self.timeout, httpx.Timeout) else httpx.Timeout(self.timeout)
        )


def tls_context(
    verify: VerifyTypes = True, cert: CertTypes | None = None, trust_env: bool = True
) -> ssl.SSLContext:
    """The TLS context for these settings (see the module's docstring)."""
    return tls_source(verify, cert, trust_env)()


TLSSource = Callable[[], ssl.SSLContext]


def tls_source(
    verify: VerifyTypes = True, cert: CertTypes | None = None, trust_env: bool = True
) -> TLSSource:
    """What makes the TLS context for these settings: the environment is read now (as a
    client is made), the context made when first called (a client that never speaks
    https never loads a CA bundle)."""
    if isinstance(verify, ssl.SSLContext):
        context = verify
        if cert is not None:
            _load_cert(context, cert)
        return lambda: context
    cafile = capath = None
    if verify is True:
        if trust_env and os.environ.get("SSL_CERT_FILE"):
            cafile = os.environ["SSL_CERT_FILE"]
        elif trust_env and os.environ.get("SSL_CERT_DIR"):
            capath = os.environ["SSL_CERT_DIR"]
        else:
            import certifi  # noqa: PLC0415  # httpx's own dependency

            cafile = certifi.where()
    elif verify is not False:
        where = os.fspath(verify)
        if os.path.isdir(where):
            capath = where
        else:
            cafile = where
    return functools.partial(_current_context, verify is not False, cafile, capath, cert)


def _current_context(
    verify: bool, cafile: str | None, capath: str | None, cert: CertTypes | None
) -> ssl.SSLContext:
    stamps = (_stamp(cafile), _stamp(capath), _cert_stamp(cert))
    return _context(verify, cafile, capath, cert, *stamps)


def _stamp(path: str | None) -> tuple[int, int] | None:
    """What says a file changed: its size and modification time (None: no such file)."""
    if path is None:
        return None
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_size, status.st_mtime_ns


def _cert_stamp(cert: CertTypes | None) -> tuple[Any, ...] | None:
    if cert is None:
        return None
    paths = (cert,) if isinstance(cert, str) else cert[:2]
    return tuple(_stamp(path) for path in paths)


@functools.lru_cache(maxsize=16)
def _context(
    verify: bool,
    cafile: str | None,
    capath: str | None,
    cert: CertTypes | None,
    *stamps: Any,  # part of the key only: a changed file makes a new context
) -> ssl.SSLContext:
    if verify:
        context = ssl.create_default_context(cafile=cafile, capath=capath)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert is not None:
        _load_cert(context, cert)
    context.set_alpn_protocols(["http/1.1"])
    return context


def _load_cert(context: ssl.SSLContext, cert: CertTypes) -> None:
    if isinstance(cert, str):
        context.load_cert_chain(cert)
    else:
        context.load_cert_chain(*cert)
