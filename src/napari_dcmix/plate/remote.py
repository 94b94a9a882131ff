"""Plates on a server: zarr stores over HTTP(S) and S3, retried, cached, never written.

zarr-python's ``FsspecStore`` reads (fsspec's HTTPFileSystem on aiohttp for ``http(s)://``, s3fs for
``s3://``); :class:`RemoteStore` wraps it. Every read is retried on a server error (5xx), a timeout
or a dropped connection — 3 attempts with exponential back-off, then :class:`SourceUnavailable`
naming the URL and what to do — and kept in a memory cache under a byte limit while the plate is
open, and, when asked, in a disk cache under the user's cache folder (never beside the data). A
missing key (404) stays what the zarr spec makes of it: the array's fill value.

Reads run on zarr's event loop: the chunks of one field are fetched concurrently, a back-off
sleeps without holding anything, and the disk cache reads and writes on worker threads.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from zarr.storage import WrapperStore

from ..errors import PlateError, SourceUnavailable
from .location import PlateLocation

DEFAULT_CACHE_BYTES = 1 << 30
#: settings from the environment (the CLI's flags and the Open plate URL form override them)
ENV_CACHE_SIZE = "NAPARI_DCMIX_CACHE_SIZE"
ENV_DISK_CACHE = "NAPARI_DCMIX_DISK_CACHE"
ENV_TIMEOUT = "NAPARI_DCMIX_TIMEOUT"
ENV_S3_ENDPOINT = "NAPARI_DCMIX_S3_ENDPOINT"
ENV_S3_SIGNED = "NAPARI_DCMIX_S3_SIGNED"
S3_EXTRA = "pip install 'napari-dcmix[s3]'"

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
          "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40, "t": 1000**4, "tb": 1000**4}


def parse_size(text: str | int, what: str = "--cache-size") -> int:
    """Bytes from ``1GiB``, ``512MiB``, ``2GB``, ``0`` (off) or a plain number; PlateError otherwise."""
    if isinstance(text, int):
        value, unit = float(text), ""
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
        if match is None or match.group(2).lower() not in _UNITS:
            raise PlateError(f"{what} {text!r} is not a size; write it like 512MiB, 2GiB or 0 (no cache)")
        value, unit = float(match.group(1)), match.group(2).lower()
    if value < 0:
        raise PlateError(f"{what} {text!r} is negative; give a size like 1GiB, or 0 for no cache")
    return int(value * _UNITS[unit])


def user_cache_folder() -> Path:
    """``$XDG_CACHE_HOME/napari-dcmix/remote`` (``~/.cache/…`` without it): the default disk cache."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "napari-dcmix" / "remote"


@dataclass(frozen=True)
class RemoteSettings:
    """How a plate at a URL is read. Defaults suit public data (IDR, the Cell Painting Gallery)."""

    cache_bytes: int = DEFAULT_CACHE_BYTES   # memory cache of fetched chunks while the plate is open
    disk_cache: Path | None = None           # also keep fetched chunks here (opt-in), by URL
    timeout_s: float = 30.0                  # a request that sends nothing for this long has timed out
    attempts: int = 3                        # tries per read before SourceUnavailable
    backoff_s: float = 0.5                   # wait before the 2nd try; doubled before each further one
    s3_endpoint: str | None = None           # an S3-compatible server (e.g. https://uk1s3.embassy.ebi.ac.uk)
    s3_signed: bool = False                  # sign S3 requests with your AWS credentials (private buckets)

    @classmethod
    def from_env(cls, env=None, **overrides) -> "RemoteSettings":
        """The defaults, then the ``NAPARI_DCMIX_*`` environment variables, then ``overrides`` (not None)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        if env.get(ENV_CACHE_SIZE, "").strip():
            values["cache_bytes"] = parse_size(env[ENV_CACHE_SIZE], ENV_CACHE_SIZE)
        disk = env.get(ENV_DISK_CACHE, "").strip()
        if disk:
            values["disk_cache"] = user_cache_folder() if disk.lower() in ("1", "yes", "true", "on") else Path(disk)
        if env.get(ENV_TIMEOUT, "").strip():
            try:
                values["timeout_s"] = float(env[ENV_TIMEOUT])
            except ValueError:
                raise PlateError(f"{ENV_TIMEOUT}={env[ENV_TIMEOUT]!r} is not a number of seconds") from None
        if env.get(ENV_S3_ENDPOINT, "").strip():
            values["s3_endpoint"] = env[ENV_S3_ENDPOINT].strip()
        if env.get(ENV_S3_SIGNED, "").strip():
            values["s3_signed"] = env[ENV_S3_SIGNED].strip().lower() in ("1", "yes", "true", "on")
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = replace(cls(), **values)
        if not settings.timeout_s > 0 or settings.attempts < 1:
            raise PlateError("the timeout must be a positive number of seconds and at least one attempt is needed")
        return settings


@dataclass
class Transfers:
    """What a plate's store fetched: requests sent (retries included), bytes received, retries, reads
    answered by the memory or disk cache. Written on zarr's event loop, read anywhere."""

    requests: int = 0
    bytes: int = 0
    retries: int = 0
    cache_hits: int = 0
    disk_hits: int = 0
    missing: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def to_dict(self) -> dict:
        with self.lock:
            return {k: getattr(self, k) for k in ("requests", "bytes", "retries", "cache_hits", "disk_hits", "missing")}


class ByteCache:
    """A least-recently-used map of fetched values (``None`` = missing) under a byte limit; thread-safe."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key) -> tuple[bool, Any]:
        with self._lock:
            if key not in self._items:
                return False, None
            self._items.move_to_end(key)
            return True, self._items[key][0]

    def put(self, key, value, size: int) -> None:
        if size > self.max_bytes:
            return  # larger than the whole cache: keeping it would evict everything else
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.bytes -= old[1]
            self._items[key] = (value, size)
            self.bytes += size
            while self.bytes > self.max_bytes and self._items:
                _, (_, gone) = self._items.popitem(last=False)
                self.bytes -= gone


# --- what a failure means ----------------------------------------------------------------------------
def _status(err: BaseException) -> int | None:
    """The HTTP status of a failed request (aiohttp's ``status``, botocore's response), if any."""
    status = getattr(err, "status", None)
    if isinstance(status, int):
        return status
    response = getattr(err, "response", None)
    if isinstance(response, dict):
        code = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code if isinstance(code, int) else None
    return None


def is_transient(err: BaseException) -> bool:
    """A failure worth another try: a server error (5xx, 408, 429), a timeout, a refused or dropped
    connection, a truncated answer. Missing keys, refusals (401/403) and bad requests are not."""
    if isinstance(err, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, PlateError)):
        return False
    status = _status(err)
    if status is not None:
        return status >= 500 or status in (408, 429)
    if isinstance(err, (OSError, asyncio.TimeoutError, ConnectionError)):
        return True  # timeouts, refused/reset connections, s3fs's translated server errors
    names = {cls.__name__ for cls in type(err).__mro__}
    return bool(names & {"ClientError", "ClientPayloadError", "HTTPClientError", "ConnectionError",
                         "EndpointConnectionError", "ConnectionClosedError", "ReadTimeoutError"})


def describe_failure(err: BaseException, timeout_s: float) -> str:
    """What went wrong, in words: ``server error 500 (Internal Server Error)``, ``no answer within 30 s``…"""
    status = _status(err)
    if status is not None:
        reason = getattr(err, "message", "") or ""
        return f"server error {status}" + (f" ({reason})" if reason else "")
    if isinstance(err, (asyncio.TimeoutError, TimeoutError)) or "Timeout" in type(err).__name__:
        return f"no answer within {timeout_s:g} s (timed out)"
    detail = str(err).strip() or type(err).__name__
    if isinstance(err, OSError) and err.errno in (errno.EIO, getattr(errno, "EREMOTEIO", -1)):
        return f"server error ({err.strerror or detail})"  # s3fs's translation of an S3 server error
    if "Disconnect" in type(err).__name__ or isinstance(err, (ConnectionResetError, ConnectionAbortedError)):
        return f"the connection was dropped ({detail})"
    return f"the connection failed ({detail})"


def _refusal(err: BaseException, url: str, location: PlateLocation) -> PlateError | None:
    """A PlateError with a fix for a request the server refused (401/403, access denied), else None."""
    status = _status(err)
    if isinstance(err, PermissionError) or status in (401, 403):
        fix = ("for a private bucket give --s3-signed (your AWS credentials), for a public one check "
               "the bucket and --s3-endpoint" if location.scheme == "s3" else
               "check the URL; napari-dcmix reads public plates (no login)")
        return PlateError(f"{url}: the server refused access ({status or 'access denied'}); {fix}")
    return None


# --- the store --------------------------------------------------------------------------------------
class RemoteStore(WrapperStore):
    """A zarr store at a URL: retried reads, a memory cache under a byte limit, an optional disk cache.

    Read-only by construction (the wrapped store is opened read-only); ``transfers`` counts what was fetched.
    """

    def __init__(self, store, location: PlateLocation, settings: RemoteSettings,
                 cache: ByteCache | None = None, transfers: Transfers | None = None):
        super().__init__(store)
        self.location, self.settings = location, settings
        self.cache = cache if cache is not None else ByteCache(settings.cache_bytes)
        self.transfers = transfers if transfers is not None else Transfers()
        self._inflight: dict = {}  # (key, range) -> the future of the read on its way (zarr's loop only)
        self.disk_folder = None
        if settings.disk_cache is not None:
            digest = hashlib.sha256(str(location).encode()).hexdigest()[:16]
            self.disk_folder = Path(settings.disk_cache).expanduser() / f"{location.stem}-{digest}"

    def _with_store(self, store):
        return type(self)(store, self.location, self.settings, self.cache, self.transfers)

    def __repr__(self) -> str:
        return f"RemoteStore({self.location})"

    def url_of(self, key: str) -> str:
        return f"{self.location}/{key}" if key else str(self.location)

    async def get(self, key: str, prototype, byte_range=None):
        cache_key = (key, byte_range)
        hit, value = self.cache.get(cache_key)
        if hit:
            self.transfers.add(cache_hits=1)
            return value
        pending = self._inflight.get(cache_key)
        if pending is not None:  # another read of this key is on its way: wait for it, fetch once
            return await asyncio.shield(pending)
        pending = self._inflight[cache_key] = asyncio.get_running_loop().create_future()
        try:
            value = await self._fetch(key, prototype, byte_range)
        except asyncio.CancelledError:
            pending.cancel()
            raise
        except Exception as err:
            pending.set_exception(err)
            pending.exception()  # marked as retrieved: nobody else may be waiting
            raise
        finally:
            self._inflight.pop(cache_key, None)
        pending.set_result(value)
        self.cache.put(cache_key, value, 0 if value is None else len(value))
        return value

    async def _fetch(self, key: str, prototype, byte_range):
        value = await self._from_disk(key, prototype) if byte_range is None else None
        if value is not None:
            return value
        value = await self._retried(key, lambda: self._store.get(key, prototype, byte_range))
        if value is None:
            self.transfers.add(missing=1)
        else:
            self.transfers.add(bytes=len(value))
            if byte_range is None:
                await self._to_disk(key, value)
        return value

    async def get_partial_values(self, prototype, key_ranges):
        return list(await asyncio.gather(*(self.get(key, prototype, rng) for key, rng in key_ranges)))

    async def _get_many(self, requests):
        requests = list(requests)
        values = await asyncio.gather(*(self.get(*request) for request in requests))
        for request, value in zip(requests, values):
            yield request[0], value

    async def exists(self, key: str) -> bool:
        hit, value = self.cache.get((key, None))
        if hit:
            return value is not None
        return await self._retried(key, lambda: self._store.exists(key))

    async def _retried(self, key: str, call):
        """``await call()``, tried ``settings.attempts`` times on transient failures with back-off."""
        settings, last = self.settings, None
        for attempt in range(settings.attempts):
            if attempt:
                self.transfers.add(retries=1)
                await asyncio.sleep(settings.backoff_s * 2 ** (attempt - 1))
            self.transfers.add(requests=1)
            try:
                return await call()
            except Exception as err:  # noqa: BLE001 - sorted below: retried, refused, or passed on
                refused = _refusal(err, self.url_of(key), self.location)
                if refused is not None:
                    raise refused from None
                if not is_transient(err):
                    raise
                last = err
        raise SourceUnavailable(unavailable_message(self.url_of(key), self.location, settings, last)) from None

    # --- the disk cache (opt-in): one file per key, written atomically -----------------------------
    def _disk_path(self, key: str) -> Path | None:
        if self.disk_folder is None or not key or any(p in ("", ".", "..") for p in key.split("/")):
            return None
        return self.disk_folder / key

    async def _from_disk(self, key: str, prototype):
        path = self._disk_path(key)
        if path is None:
            return None
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError:
            return None
        self.transfers.add(disk_hits=1)
        return prototype.buffer.from_bytes(data)

    async def _to_disk(self, key: str, value) -> None:
        path = self._disk_path(key)
        if path is not None:
            await asyncio.to_thread(_write_cached, path, value.to_bytes())


def _write_cached(path: Path, data: bytes) -> None:
    """Write one cached value atomically (a crash leaves no half file); a full disk only skips caching."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        return


def unavailable_message(url: str, location: PlateLocation, settings: RemoteSettings, err) -> str:
    """The one wording of SourceUnavailable: which URL, what happened, what to do."""
    what = describe_failure(err, settings.timeout_s) if err is not None else "no answer"
    fix = "check the network connection and that the URL opens in a browser, then try again"
    if location.scheme == "s3":
        fix = ("check the network connection, the S3 endpoint (--s3-endpoint) and whether the bucket is public "
               "(anonymous, the default) or needs --s3-signed, then try again")
    return (f"{url} did not answer after {settings.attempts} attempt{'s' if settings.attempts > 1 else ''}: "
            f"{what}; {fix}")


def _storage_options(location: PlateLocation, settings: RemoteSettings) -> dict:
    """fsspec's options for the URL's filesystem: timeouts for aiohttp, anonymous/endpoint for s3fs."""
    if location.scheme == "s3":
        options: dict[str, Any] = {"anon": not settings.s3_signed, "max_concurrency": 1,
                                   "config_kwargs": {"connect_timeout": settings.timeout_s,
                                                     "read_timeout": settings.timeout_s,
                                                     "retries": {"total_max_attempts": 1}}}
        if settings.s3_endpoint:
            options["endpoint_url"] = settings.s3_endpoint
        return options
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=None, sock_connect=settings.timeout_s, sock_read=settings.timeout_s)
    return {"client_kwargs": {"timeout": timeout}}


def open_remote_store(location: PlateLocation, settings: RemoteSettings | None = None) -> RemoteStore:
    """The read-only, retried, cached zarr store of the plate at ``location`` (a URL)."""
    settings = settings or RemoteSettings.from_env()
    if location.scheme == "s3":
        try:
            import s3fs  # noqa: F401 - only to say what to install
        except ImportError:
            raise PlateError(f"{location} is on S3, which needs the optional s3fs package: {S3_EXTRA}") from None
    try:
        from zarr.storage import FsspecStore

        store = FsspecStore.from_url(str(location), storage_options=_storage_options(location, settings),
                                     read_only=True)
    except ImportError as err:  # fsspec/aiohttp are dependencies; a broken install says what is missing
        raise PlateError(f"reading {location.scheme}:// plates needs {err.name or 'fsspec and aiohttp'}: "
                         "pip install fsspec aiohttp") from None
    except ValueError as err:
        raise PlateError(f"{location} cannot be opened ({err}); check the URL") from None
    if location.scheme == "s3":
        store.fs.retries = 1  # s3fs's own retry loop: the RemoteStore retries every kind of store alike
    return RemoteStore(store, location, settings)
