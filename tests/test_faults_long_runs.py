"""Long CLI runs meeting faults (issue 22): SIGTERM to ``train`` (alone and under torchrun) saves the best
model so far within seconds, like Ctrl-C; SIGTERM to ``explain`` keeps the finished folds; SIGTERM to a
command that has nothing to keep leaves nothing behind; sites that go away while ``train`` runs stop it
with the best model saved; a storage that stops answering mid-``explain`` keeps the finished folds."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from conftest import SIGNAL_PATTERN, write_phenotype_plate, write_signal_plate
from fault_injection import temporary_files
from napari_dcmix.cli import main
from napari_dcmix.model import ChannelClassifier
from napari_dcmix.plate import open_plate
from napari_dcmix.training import TrainedModel

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def plate(tmp_path_factory):
    return write_signal_plate(tmp_path_factory.mktemp("long") / "plate", wells_per_class=8, sites=2)


def train_argv(root, labels, out, steps=100_000):
    return ["train", str(root), "--pattern", SIGNAL_PATTERN, "--labels", str(labels), "--label-column", "phenotype",
            "--out", str(out), "--tile", "16", "--steps", str(steps), "--eval-every", "10", "--probe-fraction", "0",
            "--device", "cpu", "--json"]


def terminate_after_first_evaluation(cmd: list[str], whole_group: bool = False):
    """Start ``cmd``; at the first held-out evaluation line on stderr send SIGTERM (to the process, or
    to its whole process group as a scheduler does); -> (return code, stdout, stderr, seconds to exit)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    begun = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if " val " in line:  # "step 10/100000 loss … val 0.50 | α …"
            break
    else:
        proc.wait(timeout=60)
        pytest.fail("the run ended before its first evaluation:\n" + "".join(seen))
    print(f"first evaluation {time.perf_counter() - begun:.1f} s after the start")
    start = time.perf_counter()
    if whole_group:
        os.killpg(proc.pid, signal.SIGTERM)
    else:
        proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("a process hung after SIGTERM")
    print(f"SIGTERM to the exit of every process: {time.perf_counter() - start:.1f} s")
    return proc.returncode, out, "".join(seen) + err, time.perf_counter() - start


def finite_model(path) -> TrainedModel:
    model = TrainedModel.load(path)  # refuses non-finite tensors itself
    assert all(np.isfinite(p.detach().numpy()).all() for p in model.model.parameters())
    return model


def test_sigterm_to_train_saves_the_best_model_within_seconds(plate, tmp_path):
    root, labels = plate
    out = tmp_path / "m.pt"
    code, stdout, stderr, seconds = terminate_after_first_evaluation(
        [sys.executable, "-m", "napari_dcmix", *train_argv(root, labels, out)])
    assert code == 0, stderr[-3000:]
    payload = json.loads(stdout)
    assert payload["interrupted"] is True and payload["steps"] < 100 and payload["model"] == str(out)
    assert "warning: stopped by SIGTERM at step" in stderr and "Traceback" not in stderr
    assert finite_model(out).metadata["best_step"] == 10  # the evaluation before the signal chose it
    assert seconds < 8, f"{seconds:.1f} s from SIGTERM to exit"
    assert temporary_files(tmp_path) == []


def test_sigterm_to_torchrun_rank_0_saves_and_every_rank_exits(plate, tmp_path):
    """The scheduler signals every process of the job (torchrun and both ranks, then torchrun passes it
    on): the ranks agree to stop at the same step, none waits in a collective, rank 0 saves."""
    root, labels = plate
    out = tmp_path / "ddp.pt"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "napari_dcmix",
           *train_argv(root, labels, out)]
    code, stdout, stderr, seconds = terminate_after_first_evaluation(cmd, whole_group=True)
    # torchrun itself reports the signal (its SignalException, exit 1); the workers ended cleanly
    assert "stopped by SIGTERM at step" in stderr and "error:" not in stderr, stderr[-3000:]
    payload = json.loads(stdout)  # one JSON object: rank 0 alone prints
    assert payload["interrupted"] is True and payload["world_size"] == 2
    assert finite_model(out).channels == ["ch0", "ch1", "ch2"]
    assert seconds < 20, f"{seconds:.1f} s from SIGTERM to the last process's exit"
    assert code in (0, 1) and temporary_files(tmp_path) == []


def test_sigterm_while_predicting_leaves_no_file(plate, tmp_path, capsys, monkeypatch):
    import napari_dcmix.cli as cli

    root, _ = plate
    opened = open_plate(root, SIGNAL_PATTERN)
    model = tmp_path / "model.pt"
    torch.manual_seed(0)
    TrainedModel(ChannelClassifier("dcmix", 3, 2).eval(), opened.channels, ["negative", "positive"],
                 opened.channel_stats(), 16).save(model)
    real = cli._progress

    def progress(text, final=False):
        if text.startswith("predicted 5/"):
            signal.raise_signal(signal.SIGTERM)  # a real signal, handled by the CLI's handler
        real(text, final)

    monkeypatch.setattr(cli, "_progress", progress)
    (tmp_path / "p.csv").write_text("kept\n")
    code = main(["predict", str(model), str(root), "--pattern", SIGNAL_PATTERN, "--out", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err
    assert code == 143 and err.strip().splitlines()[-1] == (
        "error: stopped by SIGTERM before the command finished")
    assert (tmp_path / "p.csv").read_text() == "kept\n" and temporary_files(tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the CLI's handler does not outlive it


@pytest.mark.parametrize("threads, folds, last", [(1, 2, "model 2/2"), (2, 3, "model 3/3")],
                         ids=["one fold at a time", "folds side by side"])
def test_sigterm_to_explain_keeps_the_finished_folds(tmp_path, capsys, monkeypatch, threads, folds, last):
    """SIGTERM while the last fold trains (alone, or after two trained side by side): the folds before it
    are kept, their rows partial."""
    import torch

    import napari_dcmix.cli as cli

    root, labels = write_phenotype_plate(tmp_path / "plate", {"ph_one": 1}, wells_per_class=6, sites=1)
    real, said = cli._progress, []

    def progress(text, final=False):
        if text.startswith(last + ":") and ", step " in text and not said:  # the last fold, training alone
            said.append(text)
            signal.raise_signal(signal.SIGTERM)
        real(text, final)

    monkeypatch.setattr(cli, "_progress", progress)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    out = tmp_path / "results"
    try:
        code = main(["explain", str(root), "--pattern", SIGNAL_PATTERN, "--labels", str(labels), "--label-column",
                     "phenotype", "--tile", "16", "--steps", "40", "--folds", str(folds), "--no-all", "--out",
                     str(out), "--json"])
    finally:
        torch.set_num_threads(before)
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    assert "warning: stopped by SIGTERM; the matrix holds only the phenotypes finished so far" in captured.err
    payload = json.loads(captured.out)
    assert payload["phenotypes"]["ph_one"]["partial"] is True and payload["model"] is None
    assert payload["phenotypes"]["ph_one"]["repeats"] == folds - 1  # every fold before the last one
    assert (out / "importance_per_phenotype.csv").is_file() and not (out / "phenotype_panel.pt").exists()


def test_sites_going_away_stop_train_with_the_best_model_saved(plate, tmp_path, capsys, monkeypatch):
    """Four training sites' files deleted after the first evaluation (every site is read from disk at each
    pass, as on a plate larger than memory): 4 of 32 sites, more than 5 %, stop the run."""
    import napari_dcmix.cli as cli
    from napari_dcmix.training import trainer as trainer_module

    root, labels = write_signal_plate(tmp_path / "plate", wells_per_class=8, sites=2)
    real_init, real_progress, made = trainer_module.Trainer.__init__, cli._train_progress, []

    def no_cache(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        self.source.cache_bytes, self.plate._cache.max_sites = 0, 0
        made.append(self)

    def progress(ev, prefix=""):
        if ev.kind == "epoch" and ev.epoch == 1:
            for key in made[0].train_keys[:4]:
                (root / f"{key.well}_s{key.site}_ch0.tif").unlink()
            made[0].source._cache.clear()
            made[0].plate._cache._items.clear()
        real_progress(ev, prefix)

    monkeypatch.setattr(trainer_module.Trainer, "__init__", no_cache)
    monkeypatch.setattr(cli, "_train_progress", progress)
    out = tmp_path / "m.pt"
    code = main(train_argv(root, labels, out, steps=200))
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and "Traceback" not in err and lines[-1].startswith("error: training stopped at step 1")
    assert "4 of its 32 labelled sites (12 %) could not be read any more" in lines[-1]
    assert lines[-1].endswith(f"the best model so far was saved to {out}")
    named = [w for w in lines if w.startswith("warning:") and "has disappeared since the plate was opened" in w]
    assert len(named) == 4  # each lost site named once
    assert finite_model(out).metadata["cancelled"] is True


def test_a_storage_gone_mid_explain_keeps_the_finished_folds(tmp_path, capsys, monkeypatch, two_fold_threads):
    from napari_dcmix.errors import SourceUnavailable
    from napari_dcmix.training import trainer as trainer_module

    root, labels = write_phenotype_plate(tmp_path / "plate", {"ph_one": 1}, wells_per_class=4, sites=1)
    real_init, made = trainer_module.Trainer.__init__, []

    def third_fold_loses_the_server(self, *args, **kwargs):  # built once a fold has finished
        real_init(self, *args, **kwargs)
        made.append(self)
        if len(made) == 3:  # the plate is shared: a fold still running beside it loses the server too
            def read_site(key):
                raise SourceUnavailable("the plate server timed out after 5 tries")
            self.source._cache.clear()
            self.plate._cache.max_sites = 0
            self.plate._cache._items.clear()
            monkeypatch.setattr(self.plate, "read_site", read_site)

    monkeypatch.setattr(trainer_module.Trainer, "__init__", third_fold_loses_the_server)
    out = tmp_path / "results"
    code = main(["explain", str(root), "--pattern", SIGNAL_PATTERN, "--labels", str(labels), "--label-column",
                 "phenotype", "--tile", "16", "--steps", "40", "--folds", "3", "--no-all", "--out", str(out)])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and line.startswith("error: training stopped ") and "timed out after 5 tries" in line
    assert f"the matrix holds the fold models finished before it (partial), written to {out}" in line
    rows = list(csv.DictReader((out / "importance_per_phenotype.csv").open()))
    assert rows and not (out / "phenotype_panel.pt").exists()


def test_storage_gone_before_any_fold_finished_says_nothing_was_kept(tmp_path, capsys, monkeypatch):
    from napari_dcmix.errors import SourceUnavailable

    root, labels = write_phenotype_plate(tmp_path / "plate", {"ph_one": 1}, wells_per_class=4, sites=1)
    from napari_dcmix.plate import plate as plate_module

    out = tmp_path / "results"

    def gone(self, key):
        raise SourceUnavailable("the plate server timed out after 5 tries")

    monkeypatch.setattr(plate_module.Plate, "read_site", gone)
    code = main(["explain", str(root), "--pattern", SIGNAL_PATTERN, "--labels", str(labels), "--label-column",
                 "phenotype", "--tile", "16", "--steps", "40", "--folds", "2", "--no-all", "--out", str(out)])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and line.startswith("error: ") and "no fold model had finished: nothing to keep" in line
    assert not (out / "importance_per_phenotype.csv").exists()


def test_a_site_deleted_while_predicting_is_named_once_and_skipped(plate, tmp_path, capsys, monkeypatch):
    import csv

    import napari_dcmix.cli as cli

    root, _ = plate
    work = tmp_path / "plate"
    work.mkdir()
    for path in root.iterdir():
        (work / path.name).write_bytes(path.read_bytes())
    opened = open_plate(work, SIGNAL_PATTERN)
    model = tmp_path / "model.pt"
    torch.manual_seed(0)
    TrainedModel(ChannelClassifier("dcmix", 3, 2).eval(), opened.channels, ["negative", "positive"],
                 opened.channel_stats(), 16, {"normalization": "model"}).save(model)
    gone = opened.sites[20]
    real = cli._progress

    def progress(text, final=False):
        if text.startswith("predicted 1/"):
            (work / f"{gone.well}_s{gone.site}_ch2.tif").unlink()  # read ahead: 20 sites later
        real(text, final)

    monkeypatch.setattr(cli, "_progress", progress)
    out = tmp_path / "p.csv"
    code = main(["predict", str(model), str(work), "--pattern", SIGNAL_PATTERN, "--out", str(out), "--per-site"])
    err = capsys.readouterr().err
    assert code == 0, err
    named = [w for w in err.splitlines() if w.startswith("warning:")]
    assert named == [f"warning: {gone.label()}: {gone.well}_s{gone.site}_ch2.tif has disappeared since the plate was "
                     "opened (deleted, moved, or its drive is gone): skipped; check the plate folder, then open the "
                     "plate again"]
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == len(opened.sites) - 1 and (gone.well, str(gone.site)) not in {(r["well"], r["site"]) for r in rows}
