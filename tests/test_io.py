"""Atomic writes: all or nothing, readable by colleagues, clear errors."""

import os
import stat

import pytest

from napari_dcmix._io import atomic_write, atomic_write_text
from napari_dcmix.errors import DcmixError


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "model.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as handle:
            handle.write("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["model.csv"]


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DcmixError, match="does not exist"):
        atomic_write_text(tmp_path / "nope" / "a.txt", "x")
