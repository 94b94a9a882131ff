"""The CLI on an OME-Zarr plate given by URL (served from 127.0.0.1 inside the test): inspect, train,
explain and predict see what they see on the local copy; the server's failures are one ``error:``
line with exit code 2; outputs stay local files; the remote flags refuse to do nothing."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import write_ome_zarr_plate, write_zarr_signal_plate
from plate_server import is_chunk

from napari_dcmix.cli import main

TRAIN = ["--label-column", "phenotype", "--tile", "16", "--batch-size", "16", "--steps", "20", "--eval-every", "10",
         "--device", "cpu", "--seed", "0"]


def run(capfd, *argv):
    code = main([str(a) for a in argv])
    out, err = capfd.readouterr()  # capfd: also what threads and the event loop print
    return code, out, err


@pytest.fixture
def served(tmp_path, plate_server):
    local = write_ome_zarr_plate(tmp_path / "bucket" / "screen.zarr", "0.5")
    server = plate_server(tmp_path)
    return server, server.url("bucket/screen.zarr"), local


def test_inspect_a_url_as_the_local_copy(served, capfd, monkeypatch):
    _, url, local = served
    monkeypatch.setenv("NAPARI_DCMIX_TIMEOUT", "5")
    code, out, err = run(capfd, "inspect", url, "--json")
    assert code == 0, err
    remote = json.loads(out)
    code, out, _ = run(capfd, "inspect", local, "--json")
    here = json.loads(out)
    for key in ("layout", "wells", "sites", "sites_per_well", "channels", "shape", "dtype", "problems"):
        assert remote[key] == here[key], key
    assert remote["transfers"]["requests"] > 0 and "transfers" not in here
    assert f"opening {url}" in err and "fetched" in err


def test_inspect_check_names_an_empty_field(served, capfd):
    _, url, local = served
    for chunk in (local / "C" / "2" / "1" / "s0").rglob("*"):
        if chunk.is_file() and chunk.name.isdigit():
            chunk.unlink()
    code, out, err = run(capfd, "inspect", url, "--check", "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["skipped"] == ["C02 s2"]
    (empty,) = [p for p in payload["problems"] if p["kind"] == "empty"]
    assert empty["well"] == "C02" and "missing" in empty["message"]
    assert "warning: C02 s2 is empty" in err


@pytest.mark.parametrize("fault", [500, "close"])
def test_a_failing_server_is_one_error_line_and_exit_2(served, capfd, monkeypatch, fault):
    server, url, _ = served
    monkeypatch.setenv("NAPARI_DCMIX_TIMEOUT", "2")
    server.fault = lambda method, path, seen: fault if is_chunk(path) else None
    code, out, err = run(capfd, "inspect", url, "--check")
    assert code == 2 and out == ""
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and url in errors[0] and "after 3 attempts" in errors[0] and "try again" in errors[0]
    assert "Traceback" not in err and "Exception ignored" not in err and "warning:" not in err


def test_train_and_predict_over_http_match_the_local_copy(tmp_path, plate_server, capfd):
    local, labels = write_zarr_signal_plate(tmp_path / "bucket" / "signal.zarr", "0.5")
    server = plate_server(tmp_path)
    url = server.url("bucket/signal.zarr")
    models = {}
    for name, plate in (("local", local), ("remote", url)):
        models[name] = tmp_path / f"{name}.pt"
        code, out, err = run(capfd, "train", plate, "--labels", labels, "--out", models[name], "--json", *TRAIN)
        assert code == 0, err
        models[name + "_alpha"] = json.loads(out)["importance"]
    assert models["remote_alpha"] == pytest.approx(models["local_alpha"], abs=1e-5)  # same pixels, same model
    rows = {}
    for name, plate in (("local", local), ("remote", url)):
        out_csv = tmp_path / f"{name}.csv"
        code, _, err = run(capfd, "predict", models["local"], plate, "--out", out_csv)
        assert code == 0, err
        rows[name] = list(csv.DictReader(open(out_csv, newline="")))
    assert rows["remote"] == rows["local"] and len(rows["local"]) == 12


def test_explain_over_http(tmp_path, plate_server, capfd):
    local, labels = write_zarr_signal_plate(tmp_path / "bucket" / "signal.zarr", "0.4")
    server = plate_server(tmp_path)
    code, out, err = run(capfd, "explain", server.url("bucket/signal.zarr"), "--labels", labels, "--folds", "2",
                         "--out", tmp_path / "results", "--json", *TRAIN)
    assert code == 0, err
    payload = json.loads(out)
    assert payload["channels"] == ["DNA", "ER", "Mito"] and "positive" in payload["phenotypes"]
    assert (tmp_path / "results" / "importance_per_phenotype.csv").is_file()


def test_predict_stops_when_the_server_stops(tmp_path, plate_server, capfd, monkeypatch):
    local, labels = write_zarr_signal_plate(tmp_path / "bucket" / "signal.zarr", "0.5")
    model = tmp_path / "model.pt"
    assert run(capfd, "train", local, "--labels", labels, "--out", model, *TRAIN)[0] == 0
    server = plate_server(tmp_path)
    monkeypatch.setenv("NAPARI_DCMIX_TIMEOUT", "2")
    server.fault = lambda method, path, seen: 503 if is_chunk(path) and "/E/" in path else None
    out_csv = tmp_path / "calls.csv"
    code, _, err = run(capfd, "predict", model, server.url("bucket/signal.zarr"), "--out", out_csv)
    assert code == 2 and "server error 503" in err and not out_csv.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".calls")]  # no temporary file left
    assert "skipped" not in err  # a site of the failing wells is not reported as damaged


def test_outputs_are_local_files_and_remote_flags_refuse_to_do_nothing(served, capfd, tmp_path):
    _, url, local = served
    code, _, err = run(capfd, "train", url, "--labels", tmp_path / "l.csv", "--out", url + "/model.pt", *TRAIN)
    assert code == 2 and "is a URL" in err and "files on this computer" in err
    code, _, err = run(capfd, "inspect", local, "--cache-size", "2GiB")
    assert code == 2 and "--cache-size does nothing for a plate folder" in err
    code, _, err = run(capfd, "inspect", url, "--s3-endpoint", "https://s3.example.org")
    assert code == 2 and "--s3-endpoint does nothing for a http:// plate" in err
    code, _, err = run(capfd, "inspect", url, "--cache-size", "lots")
    assert code == 2 and "--cache-size 'lots' is not a size" in err


def test_cache_flags_reach_the_store(served, capfd, tmp_path):
    server, url, _ = served
    cache = tmp_path / "cache"
    code, out, err = run(capfd, "inspect", url, "--check", "--disk-cache", cache, "--cache-size", "0", "--json")
    assert code == 0, err
    fetched = len(server.chunk_requests())
    assert fetched == 6 * 4 and any(cache.rglob("*"))
    code, out, err = run(capfd, "inspect", url, "--check", "--disk-cache", cache, "--json")
    assert code == 0, err
    assert len(server.chunk_requests()) == fetched and json.loads(out)["transfers"]["disk_hits"] >= 24
    np.testing.assert_equal(json.loads(out)["wells"], 3)
