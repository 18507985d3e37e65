"""The shared cache's keys, as pure rules: which file, which version of it, read with
which credentials, and whether an answer may be kept at all.

* A file is named by a hash of its URL (userinfo is already out of it, see ``origins``),
  so a token in a query string is never written to the cache directory.
* A version is named by its validators. One is cacheable only when it can be told apart
  from the next: a strong ETag or a Last-Modified date, and its size. A weak ETag alone
  (``W/"..."``: "semantically equal", not byte-equal) or no validator at all is not.
* The credentials a request carried (``Authorization``, ``Cookie``, and any header the
  caller marked sensitive) are named by a keyed hash (HMAC-SHA-256 under a secret kept
  in the cache): bytes read with one set of credentials are served only to reads that
  send the same ones, and a low-entropy password cannot be guessed from the key alone.
* ``Cache-Control: no-store`` on an answer means it is not kept.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .protocol import RemoteState
from .range_headers import Validators

__all__ = [
    "ANONYMOUS",
    "FileMeta",
    "block_digest",
    "credential_key",
    "file_key",
    "forbids_storing",
    "url_key",
    "version_key",
]

ANONYMOUS = "anonymous"  # the credential key of a request that carried none
_KEY_CHARS = 32  # hex digits kept of each hash: 128 bits


def url_key(url: str) -> str:
    """The key of a URL (without userinfo): SHA-256, so no part of it is stored."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:_KEY_CHARS]


def version_key(validators: Validators | None) -> str | None:
    """The key of one version of a file, or None when its version cannot be told apart
    from another's (no strong ETag and no Last-Modified, or no size): not cacheable."""
    if validators is None or validators.size is None:
        return None
    if validators.strong_etag is None and validators.last_modified is None:
        return None
    text = f"{validators.etag or ''}\n{validators.last_modified or ''}\n{validators.size}"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:_KEY_CHARS]


def credential_key(secret: bytes, headers: Iterable[tuple[str, str]], names: frozenset[str]) -> str:
    """The key of the credentials among ``headers`` (those named in ``names``, compared
    lowercased), or ``ANONYMOUS`` when there are none."""
    found = sorted(
        (name.lower(), value) for name, value in headers if name.lower() in names and value
    )
    if not found:
        return ANONYMOUS
    mac = hmac.new(secret, digestmod=hashlib.sha256)
    for name, value in found:
        mac.update(name.encode("ascii", "replace") + b"\0")
        mac.update(value.encode("utf-8", "surrogateescape") + b"\0")
    return mac.hexdigest()[:_KEY_CHARS]


def file_key(url: str, credentials: str) -> str:
    """The key under which a file's metadata and blocks are kept: its URL's key and the
    credentials' key together."""
    return f"{url}.{credentials}"


def forbids_storing(headers: Mapping[str, str]) -> bool:
    """Whether an answer says it must not be stored (``Cache-Control: no-store``)."""
    value = headers.get("cache-control")
    if not value:
        return False
    directives = {part.split("=", 1)[0].strip().lower() for part in value.split(",")}
    return "no-store" in directives


def block_digest(file: str, version: str, index: int, start: int, data: bytes) -> bytes:
    """The checksum kept with a block on disk (BLAKE2b, 128 bits) of its bytes and of
    where they belong (file, version, block, offset): a bit flipped on the disk, in the
    bytes or in the row that places them, is found when read back, and the block is
    fetched again."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{file}\n{version}\n{index}\n{start}\n".encode())
    digest.update(data)
    return digest.digest()


@dataclass(frozen=True, slots=True)
class FileMeta:
    """What the cache keeps about one file beside its blocks: the version the blocks
    belong to, and what the server showed it can do (so a later session need not find
    out again). ``location`` is where the URL redirected to, when it did."""

    url: str  # url_key of the URL
    credentials: str  # credential_key of the requests that read it
    version: str
    etag: str | None
    last_modified: str | None
    size: int
    origin: str  # scheme://host[:port], for ``cache info``
    location: str | None = None
    learned_at: float = 0.0  # when this session's answer came (time.time())
    suffix_supported: bool | None = None
    multipart_supported: bool | None = None
    max_ranges: int | None = None

    @property
    def key(self) -> str:
        return file_key(self.url, self.credentials)

    @property
    def validators(self) -> Validators:
        return Validators(self.etag, self.last_modified, self.size)

    @classmethod
    def of(
        cls, remote: RemoteState, url: str, credentials: str, version: str, origin: str
    ) -> FileMeta:
        """The metadata a session learned (its validators are pinned)."""
        assert remote.validators is not None and remote.total is not None
        return cls(
            url=url,
            credentials=credentials,
            version=version,
            etag=remote.validators.etag,
            last_modified=remote.validators.last_modified,
            size=remote.total,
            origin=origin,
            location=remote.location,
            learned_at=time.time(),
            suffix_supported=remote.suffix_supported,
            multipart_supported=remote.multipart_supported,
            max_ranges=remote.max_ranges,
        )

    def lend_capabilities(self, remote: RemoteState) -> None:
        """Tell ``remote`` what the server was seen to support (what it does not know
        yet): a suffix refused, multi-range refused or capped are not asked again."""
        if remote.suffix_supported is None:
            remote.suffix_supported = self.suffix_supported
        if remote.multipart_supported is None:
            remote.multipart_supported = self.multipart_supported
        if remote.max_ranges is None:
            remote.max_ranges = self.max_ranges

    def location_for(self, now: float, max_age: float) -> str | None:
        """Where a new session may send its first request: the redirect this file's
        anonymous read was answered with, if recent. A redirect seen by a read with
        credentials (a presigned URL handed to that user) is never lent to another."""
        if self.credentials != ANONYMOUS or self.location is None:
            return None
        return self.location if 0 <= now - self.learned_at <= max_age else None
