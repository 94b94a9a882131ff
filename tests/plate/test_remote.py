"""OME-Zarr plates by URL (plate/remote.py, plate/location.py): served from a local HTTP server on
127.0.0.1 inside each test. The same wells, channels and pixels as the local copy; missing chunks are
the fill value and a field without any is named empty; server errors are retried, then a clear
SourceUnavailable; the memory and disk caches stop refetching; reads of one field are concurrent."""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import quick_remote, site_pixels, write_ome_zarr_plate
from plate_server import is_chunk

from napari_dcmix.errors import PlateError, SourceUnavailable
from napari_dcmix.plate import SiteKey, open_plate
from napari_dcmix.plate.remote import RemoteSettings, parse_size


@pytest.fixture(params=["0.4", "0.5"])
def served(request, tmp_path, plate_server):
    """(server, URL, local folder) of a 3-well × 2-field plate (16 px, 4 chunks of 8×8 per field)."""
    local = write_ome_zarr_plate(tmp_path / "bucket" / f"plate{request.param}.zarr", request.param)
    server = plate_server(tmp_path)
    return server, server.url(f"bucket/{local.name}"), local


def _chunk_files(field):
    return [p for p in (field / "s0").rglob("*") if p.is_file() and p.name.isdigit()]


def test_a_plate_opens_by_url_like_its_local_copy(served):
    server, url, local = served
    remote, copy = open_plate(url, remote=quick_remote()), open_plate(local)
    assert remote.root is None and remote.location.url == url and remote.is_remote
    assert remote.name == "ZPlate" and remote.layout == "ome-zarr"
    assert remote.wells() == copy.wells() == ["B02", "B03", "C02"]
    assert remote.sites == copy.sites and remote.channels == ["DNA", "ER", "Mito"]
    assert remote.channel_colors == copy.channel_colors and list(remote.problems) == []
    assert server.chunk_requests() == []  # opening fetched metadata only
    for key in remote.sites:
        np.testing.assert_array_equal(remote.read_site(key), copy.read_site(key))
    assert remote.transfers()["requests"] > 0 and remote.transfers()["retries"] == 0


def test_a_missing_chunk_is_the_fill_value_and_a_field_without_chunks_is_named_empty(served):
    server, url, local = served
    first, *_ = sorted(_chunk_files(local / "B" / "2" / "0"))  # the chunk holding y 0-7, x 0-7
    first.unlink()
    for chunk in _chunk_files(local / "B" / "3" / "0"):  # B03 s1: nothing left
        chunk.unlink()
    plate = open_plate(url, remote=quick_remote())
    site = plate.read_site(SiteKey("", "B02", 1))
    assert not site[:, :8, :8].any()  # the zarr rule: the fill value, 0
    np.testing.assert_array_equal(site[1, 8:, 8:], site_pixels("B02", 1, 1, 16)[8:, 8:])
    assert list(plate.problems) == []  # a missing chunk is no error
    with pytest.raises(PlateError, match="B03 s1 is empty"):
        plate.read_site(SiteKey("", "B03", 1))
    (empty,) = [p for p in plate.problems if p.kind == "empty"]
    assert empty.site == "B03 s1" and empty.action == "skipped" and "B/3/0" in empty.message
    assert plate.read_site(SiteKey("", "B03", 2)).shape == (3, 16, 16)  # the rest of the well is fine


def test_server_errors_are_retried_and_counted(served):
    server, url, local = served
    failing = {}

    def twice_500(method, path, seen):
        if is_chunk(path) and not failing:
            failing["path"] = path
        return 500 if path == failing.get("path") and seen < 2 else None

    server.fault = twice_500
    plate = open_plate(url, remote=quick_remote())
    key = SiteKey("", "B02", 1)
    np.testing.assert_array_equal(plate.read_site(key), open_plate(local).read_site(key))
    assert server.count(failing["path"]) == 3  # 500, 500, then the chunk
    assert plate.transfers()["retries"] == 2
    assert list(plate.problems) == []


@pytest.mark.parametrize("fault, words", [(500, "server error 500"), ("close", "connection was dropped"),
                                          (("sleep", 1.5), "timed out")])
def test_a_server_that_keeps_failing_is_a_clear_error_not_a_skipped_site(served, fault, words):
    server, url, _ = served
    plate = open_plate(url, remote=quick_remote(timeout_s=0.4))
    server.fault = lambda method, path, seen: fault if is_chunk(path) else None
    started = time.perf_counter()
    with pytest.raises(SourceUnavailable) as caught:
        plate.read_site(SiteKey("", "C02", 2))
    message = str(caught.value)
    assert url + "/C/2/1/s0/" in message and "after 3 attempts" in message and words in message
    assert "try again" in message
    assert time.perf_counter() - started < 10
    named = message.split(" did not answer")[0].replace(server.base, "")
    assert 3 <= server.count(named) <= 6  # 3 attempts (aiohttp re-sends once on a dropped reused connection)
    assert list(plate.problems) == []  # the server's fault, not the site's: nothing is skipped


def test_refused_access_says_what_to_check(served):
    server, url, _ = served
    plate = open_plate(url, remote=quick_remote())
    server.fault = lambda method, path, seen: 403 if is_chunk(path) else None
    with pytest.raises(PlateError, match="refused access") as caught:
        plate.read_site(SiteKey("", "B02", 1))
    assert not isinstance(caught.value, SourceUnavailable)


def test_a_url_without_a_plate_or_a_server_is_a_clear_error(served, tmp_path):
    server, url, _ = served
    with pytest.raises(PlateError, match="holds no readable zarr group.*check the URL"):
        open_plate(url.replace("plate", "nothing"), remote=quick_remote())
    with pytest.raises(PlateError, match="without plate wells"):
        open_plate(url + "/B/2/0", remote=quick_remote())  # an image, not a plate
    base = server.base
    server.stop()  # nobody answers on that port any more
    with pytest.raises(SourceUnavailable, match="did not answer after 3 attempts: the connection failed"):
        open_plate(url.replace(base, base), remote=quick_remote())


def test_the_memory_cache_stops_refetching_under_its_limit(served):
    server, url, _ = served
    plate = open_plate(url, remote=quick_remote())
    key = SiteKey("", "C02", 1)
    plate.read_preview(key, 16)  # previews are not kept by the plate's site cache: only the chunk cache
    before = len(server.chunk_requests())
    plate.read_preview(key, 16)
    assert len(server.chunk_requests()) == before and plate.transfers()["cache_hits"] >= 4
    uncached = open_plate(url, remote=quick_remote(cache_bytes=0))
    uncached.read_preview(key, 16)
    before = len(server.chunk_requests())
    uncached.read_preview(key, 16)
    assert len(server.chunk_requests()) == before + 4  # no cache: every chunk again


def test_the_disk_cache_serves_the_next_session_and_stays_out_of_the_data(served, tmp_path):
    server, url, local = served
    cache = tmp_path / "user-cache"
    served_files = sorted(p for p in local.rglob("*"))
    first = open_plate(url, remote=quick_remote(disk_cache=cache))
    pixels = {key: first.read_site(key) for key in first.sites}
    fetched = len(server.chunk_requests())
    assert fetched == 6 * 4 and any(cache.rglob("*"))
    again = open_plate(url, remote=quick_remote(disk_cache=cache))  # a new store: an empty memory cache
    for key, data in pixels.items():
        np.testing.assert_array_equal(again.read_site(key), data)
    assert len(server.chunk_requests()) == fetched and again.transfers()["disk_hits"] >= 24
    assert sorted(p for p in local.rglob("*")) == served_files  # nothing written beside the data


def test_the_chunks_of_one_field_are_fetched_concurrently(served):
    server, url, _ = served
    plate = open_plate(url, remote=quick_remote(timeout_s=5))
    server.fault = lambda method, path, seen: ("sleep", 0.4) if is_chunk(path) else None
    started = time.perf_counter()
    plate.read_site(SiteKey("", "B03", 2))  # 4 chunks, each answered after 0.4 s
    assert time.perf_counter() - started < 1.2  # one after another would take 1.6 s


def test_statistics_of_a_remote_plate_equal_the_local_ones(served):
    _, url, local = served
    remote, copy = open_plate(url, remote=quick_remote()), open_plate(local)
    a, b = remote.channel_stats(n_sites=4), copy.channel_stats(n_sites=4)
    np.testing.assert_allclose(a.low, b.low)
    np.testing.assert_allclose(a.high, b.high)


def test_an_s3_plate_opens_anonymously_at_a_custom_endpoint(served):
    pytest.importorskip("s3fs")
    server, url, local = served
    s3 = f"s3://bucket/{local.name}"
    plate = open_plate(s3, remote=quick_remote(s3_endpoint=server.base))
    assert plate.location.scheme == "s3" and plate.wells() == ["B02", "B03", "C02"]
    key = SiteKey("", "C02", 2)
    np.testing.assert_array_equal(plate.read_site(key), open_plate(local).read_site(key))


def test_s3_without_s3fs_says_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "s3fs", None)  # as if the [s3] extra was not installed
    with pytest.raises(PlateError, match=r"napari-dcmix\[s3\]"):
        open_plate("s3://bucket/plate.zarr", remote=quick_remote())


def test_sizes_and_settings_from_the_environment(tmp_path):
    assert parse_size("1GiB") == 1 << 30 and parse_size("512MiB") == 512 << 20 and parse_size("0") == 0
    assert parse_size("2GB") == 2_000_000_000
    with pytest.raises(PlateError, match="not a size"):
        parse_size("lots")
    settings = RemoteSettings.from_env({"NAPARI_DCMIX_CACHE_SIZE": "256MiB", "NAPARI_DCMIX_DISK_CACHE": "1",
                                        "NAPARI_DCMIX_S3_ENDPOINT": "https://s3.example.org", "XDG_CACHE_HOME": ""})
    assert settings.cache_bytes == 256 << 20 and settings.disk_cache.name == "remote"
    assert settings.s3_endpoint == "https://s3.example.org" and not settings.s3_signed
    assert RemoteSettings.from_env({}, cache_bytes=0).cache_bytes == 0
    assert RemoteSettings.from_env({}).cache_bytes == 1 << 30  # the default: 1 GiB
