"""A storage that stops answering is not a damaged site (issue 22): ``SourceUnavailable`` from the layer
that fetches a site's bytes passes through the plate unchanged, is never listed among the plate's
problems, and is never skipped as an unreadable site by the reads that skip those (statistics, the
first readable site, ``inspect --check``)."""

from __future__ import annotations

import pytest

from conftest import write_imagexpress
from napari_dcmix.errors import SourceUnavailable
from napari_dcmix.plate import SiteKey, open_plate


@pytest.fixture
def dropped(tmp_path, monkeypatch):
    """A plate whose storage has stopped answering: every channel read raises SourceUnavailable."""
    import napari_dcmix.plate.plate as plate_module

    plate = open_plate(write_imagexpress(tmp_path / "ixm"))

    def read_channels(*_args, **_kwargs):
        raise SourceUnavailable("the plate server timed out after 5 tries")

    monkeypatch.setattr(plate_module, "read_channels", read_channels)
    return plate


def test_a_site_read_raises_it_unchanged_and_names_no_problem(dropped):
    with pytest.raises(SourceUnavailable, match="timed out after 5 tries"):
        dropped.read_site(SiteKey("Plate1", "B02", 1))
    assert list(dropped.problems) == [] and dropped.problems.skipped() == []


@pytest.mark.parametrize("read", ["first_readable_site", "channel_stats", "summary"])
def test_reads_that_skip_damaged_sites_do_not_skip_it(dropped, read):
    with pytest.raises(SourceUnavailable):
        getattr(dropped, read)()
    assert list(dropped.problems) == []


def test_inspect_check_stops_and_says_where(tmp_path, monkeypatch, capsys):
    import napari_dcmix.plate.plate as plate_module
    from napari_dcmix.cli import main

    root = write_imagexpress(tmp_path / "ixm")
    real, calls = plate_module.read_channels, []

    def read_channels(*args, **kwargs):
        calls.append(1)
        if len(calls) > 3:
            raise SourceUnavailable("connection reset by the plate server")
        return real(*args, **kwargs)

    monkeypatch.setattr(plate_module, "read_channels", read_channels)
    code = main(["inspect", str(root), "--check"])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and line.startswith("error: the check stopped at Plate1 ") and "site 4 of 12" in line
    assert "connection reset" in line and "run it again when the storage answers" in line
