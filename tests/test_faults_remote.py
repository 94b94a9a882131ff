"""A plate's storage that stops answering mid-predict (issue 22): the server is simulated by a site read
that raises :class:`SourceUnavailable` from some site on. ``predict --out X.csv`` leaves X.csv as it was
(absent, or the previous file byte for byte), keeps the rows of the wells completed before the failure
in ``X.csv.partial`` (the same bytes a full run writes for them) and says where it stopped; the storage
is never taken for a damaged site. The plate reads that lead there are tested in tests/plate."""

from __future__ import annotations

import pytest
import torch

from conftest import SIGNAL_PATTERN, write_signal_plate
from fault_injection import temporary_files
from napari_dcmix.cli import main
from napari_dcmix.errors import SourceUnavailable
from napari_dcmix.model import ChannelClassifier
from napari_dcmix.plate import open_plate
from napari_dcmix.training import TrainedModel
from napari_dcmix.training.exports import partial_path, write_plate_predictions

REASON = "HTTP 503 from the plate server after 5 tries"


@pytest.fixture(scope="module")
def plate_and_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("remote")
    root, _ = write_signal_plate(folder / "plate", wells_per_class=3, sites=2, size=32)
    plate = open_plate(root, SIGNAL_PATTERN)
    torch.manual_seed(0)
    model = TrainedModel(ChannelClassifier("dcmix", 3, 2).eval(), plate.channels, ["negative", "positive"],
                         plate.channel_stats(), 16, {"normalization": "model"})
    model.save(folder / "model.pt")
    return root, folder / "model.pt"


def server_drops_at(monkeypatch, plate, site_index: int, damaged: int | None = None) -> None:
    """The storage answers for the first ``site_index`` sites of the plate (in plate order) and then never
    again; ``damaged``: one earlier site whose file is damaged (an ordinary skipped site)."""
    from napari_dcmix.errors import PlateError

    real, order = plate.read_site, {key: i for i, key in enumerate(plate.sites)}

    def read_site(key):
        if order[key] >= site_index:
            raise SourceUnavailable(REASON)
        if order[key] == damaged:
            raise PlateError(f"{key.label()}: its file could not be read (truncated); re-export it")
        return real(key)

    monkeypatch.setattr(plate, "read_site", read_site)


def full_run(plate, model, folder, fmt, per_site) -> list[str]:
    out = folder / f"full-{fmt}-{per_site}.csv"
    write_plate_predictions(model, plate, out, fmt=fmt, per_site=per_site)
    return out.read_text().splitlines(keepends=True)


@pytest.mark.parametrize("fmt,per_site", [("csv", False), ("csv", True), ("pycytominer", False)])
@pytest.mark.parametrize("previous", [False, True])
def test_the_output_is_untouched_and_the_complete_wells_are_kept(plate_and_model, tmp_path, monkeypatch, fmt,
                                                                  per_site, previous):
    root, model_path = plate_and_model
    plate, model = open_plate(root, SIGNAL_PATTERN), TrainedModel.load(model_path)
    expected = full_run(plate, model, tmp_path, fmt, per_site)
    out = tmp_path / "calls.csv"
    if previous:
        out.write_bytes(b"well,prediction\nB02,an earlier run\n")
    before = out.read_bytes() if previous else None
    server_drops_at(monkeypatch, plate, 7)  # 6 wells of 2 sites: wells 1-3 done, the 4th fails at its 2nd site
    with pytest.raises(SourceUnavailable) as err:
        write_plate_predictions(model, plate, out, fmt=fmt, per_site=per_site)
    wells = plate.well_keys()
    message = str(err.value)
    assert f"stopped after 3 of {len(wells)} wells (last complete well {wells[2][1]}" in message
    assert f"it failed at {plate.sites[7].label()}" in message and REASON in message
    assert str(partial_path(out)) in message and "re-run when the server answers" in message
    assert (out.read_bytes() if out.exists() else None) == before
    kept = partial_path(out).read_text().splitlines(keepends=True)
    rows_per_well = 1 if fmt == "csv" and not per_site else 2
    assert kept == expected[:1 + 3 * rows_per_well]  # the header and the complete wells, byte for byte
    assert temporary_files(tmp_path) == [] and not list(root.glob("*.partial"))
    assert not [p for p in plate.problems if "503" in p.message]  # the storage is no damaged site


def test_a_drop_before_the_first_well_is_complete_writes_nothing(plate_and_model, tmp_path, monkeypatch):
    root, model_path = plate_and_model
    plate, model = open_plate(root, SIGNAL_PATTERN), TrainedModel.load(model_path)
    server_drops_at(monkeypatch, plate, 1)
    with pytest.raises(SourceUnavailable, match=f"stopped at {plate.sites[1].label()} before any well was complete"):
        write_plate_predictions(model, plate, tmp_path / "calls.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_damaged_site_is_still_skipped_and_the_storage_still_stops(plate_and_model, tmp_path, monkeypatch):
    root, model_path = plate_and_model
    plate, model = open_plate(root, SIGNAL_PATTERN), TrainedModel.load(model_path)
    server_drops_at(monkeypatch, plate, 9, damaged=2)  # the 2nd well's first site is damaged
    with pytest.raises(SourceUnavailable, match="stopped after 4 of 6 wells"):
        write_plate_predictions(model, plate, tmp_path / "calls.csv", per_site=True)
    rows = partial_path(tmp_path / "calls.csv").read_text().splitlines()
    assert len(rows) == 1 + 7 and plate.sites[2].well in rows[3]  # 8 sites done, the damaged one skipped


def test_predict_cli_says_where_it_stopped(plate_and_model, tmp_path, monkeypatch, capsys):
    import napari_dcmix.cli as cli

    root, model_path = plate_and_model
    real_open = cli._open

    def open_dropping(args):
        plate = real_open(args)
        server_drops_at(monkeypatch, plate, 5)
        return plate

    monkeypatch.setattr(cli, "_open", open_dropping)
    out = tmp_path / "calls.csv"
    code = main(["predict", str(model_path), str(root), "--pattern", SIGNAL_PATTERN, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: prediction stopped after 2 of 6 wells (last complete well")
    assert f"the complete wells are in {out}.partial" in line and not out.exists()
    assert len(partial_path(out).read_text().splitlines()) == 3
    assert not [w for w in err.splitlines() if w.startswith("warning:")]  # no site named as damaged


def test_under_torchrun_the_earliest_stop_of_any_rank_decides(plate_and_model, tmp_path, monkeypatch):
    """Rank 0 of two (the other rank's shard and stop given): the ranks still meet in the gather, and
    rank 0 keeps the wells before the earliest site any rank failed at."""
    from napari_dcmix.training import distributed, predict_sites
    from napari_dcmix.training.distributed import DistContext

    root, model_path = plate_and_model
    plate, model = open_plate(root, SIGNAL_PATTERN), TrainedModel.load(model_path)
    expected = full_run(plate, model, tmp_path, "csv", False)
    odd = {p.key: p.probabilities for p in predict_sites(model, plate, keys=plate.sites[1:6:2])}  # sites 1, 3, 5

    class RankZero(DistContext):
        def gather(self, obj):
            self.sent = obj
            return [obj, (odd, (plate.sites[7], REASON))]  # the other rank failed at site 7

    ctx = RankZero(rank=0, world_size=2)
    monkeypatch.setattr(distributed, "setup", lambda device: (ctx, device))
    server_drops_at(monkeypatch, plate, 10)  # rank 0 itself got as far as site 10
    with pytest.raises(SourceUnavailable, match=f"stopped after 3 of 6 wells .*it failed at {plate.sites[7].label()}"):
        write_plate_predictions(model, plate, tmp_path / "calls.csv")
    assert sorted(k for k in ctx.sent[0]) == plate.sites[0:10:2] and ctx.sent[1][0] == plate.sites[10]
    assert partial_path(tmp_path / "calls.csv").read_text().splitlines(keepends=True) == expected[:4]
    assert not (tmp_path / "calls.csv").exists()
