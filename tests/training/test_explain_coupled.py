"""Explain's coupled engine: one model per fold, one blend per phenotype, trained on every labelled
well. Each row keeps its meaning (the channels that tell that phenotype from the control), phenotypes
are told apart from each other, no well is judged by a model that saw it, and a stopped run keeps
the folds that finished."""

import numpy as np
import pytest

from conftest import SIGNAL_PATTERN, stop_after_first_fold, write_phenotype_plate
from napari_dcmix.model.coupled import COUPLED_KIND
from napari_dcmix.plate import open_plate, read_labels
from napari_dcmix.training import TrainConfig
from napari_dcmix.training.explain import ALL_PHENOTYPES, ExplainConfig, Explainer

TINY = TrainConfig(steps=200, eval_every=25, patience=100, tile=16, batch_size=16, coverage=2, device="cpu", seed=0)


@pytest.fixture(scope="module")
def nested(tmp_path_factory):
    """A and B both differ from the control in ch1; B differs from A (and the control) in ch2 too."""
    root, csv_path = write_phenotype_plate(tmp_path_factory.mktemp("nested") / "plate",
                                           {"a_up": 1, "b_up": (1, 2)}, channels=4, wells_per_class=6)
    plate = open_plate(root, SIGNAL_PATTERN)
    return plate, read_labels(csv_path, plate.sites, "phenotype").site_labels


@pytest.fixture(scope="module")
def explained(nested):
    plate, labels = nested
    explainer = Explainer(plate, labels, ExplainConfig(reference="negative", train=TINY))
    events = list(explainer.run())
    return explainer, events


def test_one_coupled_model_per_fold_explains_every_phenotype(explained):
    explainer, events = explained
    matrix = explainer.result
    assert matrix.complete and [r.phenotype for r in matrix.rows] == ["a_up", "b_up", ALL_PHENOTYPES]
    assert explainer.total_models == 3 and sum(e.kind == "row" for e in events) == 3  # a row update per fold
    assert not any(r.partial for r in matrix.rows)
    panel = explainer.panel
    assert panel.kind == "dcmix-panel" and panel.metadata["members"] == 3 and panel.metadata["engine"] == "coupled"
    assert all(m.kind == COUPLED_KIND for m in panel.model.members)


def test_a_row_holds_the_channels_that_tell_its_phenotype_from_the_control(explained):
    """ch2 tells a_up from b_up, not from the control: it must not be in a_up's row."""
    matrix = explained[0].result
    a, b = matrix.row("a_up"), matrix.row("b_up")
    assert a.top_channel == "ch1" and a.importance["ch2"] < 0.2, a.importance
    assert b.importance["ch1"] + b.importance["ch2"] > 0.8, b.importance
    assert a.learned and b.learned


def test_phenotypes_are_told_from_each_other_not_only_from_the_control(explained, nested):
    explainer, _ = explained
    plate, labels = nested
    classes = explainer.panel.classes
    right = {c: [] for c in ("a_up", "b_up")}
    for (_, well), (label, probs) in explainer.panel_oof.items():
        if classes[label] in right:
            right[classes[label]].append(classes[int(np.argmax(probs))] == classes[label])
    assert all(np.mean(v) >= 0.8 for v in right.values()), {k: np.mean(v) for k, v in right.items()}


def test_no_well_is_judged_by_a_model_that_saw_it(explained, nested):
    explainer, _ = explained
    plate, labels = nested
    wells = {(k.plate, k.well) for k in labels}
    assert set(explainer.panel_oof) == wells  # every labelled well judged, out of fold
    unseen_by = {w: [i for i, m in enumerate(explainer.members) if w not in m.seen_wells] for w in wells}
    assert all(len(models) == 1 for models in unseen_by.values())  # 3 folds: only the fold that held it out
    assert sorted({models[0] for models in unseen_by.values()}) == [0, 1, 2]


def test_a_stopped_run_keeps_the_folds_that_finished(nested, two_fold_threads):
    plate, labels = nested
    explainer = Explainer(plate, labels, ExplainConfig(reference="negative", train=TINY))
    matrix = stop_after_first_fold(explainer)
    assert not matrix.complete and explainer.panel is None
    assert [r.phenotype for r in matrix.rows] == ["a_up", "b_up", ALL_PHENOTYPES]
    kept = matrix.rows[0].repeats  # the first fold, and the one beside it if that had finished too
    assert kept in (1, 2) and all(r.partial and r.repeats == kept for r in matrix.rows)
    judged = matrix.row(ALL_PHENOTYPES).verdict.n_wells
    assert 0 < judged < len({(k.plate, k.well) for k in labels})  # figures over the wells that fold judged


# --- fold models side by side (one thread each on the CPU) --------------------------------------------
@pytest.fixture
def torch_threads_set():
    """``set(n)`` gives torch n threads for the test; the count before is restored after it."""
    import torch

    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def _answer(plate, labels, threads: int, set_threads) -> tuple:
    set_threads(threads)
    cfg = ExplainConfig(reference="negative", train=TrainConfig(**{**TINY.__dict__, "steps": 40}))
    explainer = Explainer(plate, labels, cfg)
    events = list(explainer.run())
    rows = [(r.phenotype, r.importance, r.verdict.accuracy) for r in explainer.result.rows]
    oof = {w: probs.tolist() for w, (_, probs) in sorted(explainer.panel_oof.items())}
    return rows, oof, max(e.side_by_side for e in events), events


def test_folds_side_by_side_give_the_one_thread_answer_bit_for_bit(nested, torch_threads_set):
    import torch

    plate, labels = nested
    one = _answer(plate, labels, 1, torch_threads_set)
    two = _answer(plate, labels, 2, torch_threads_set)
    assert one[2] == 1 and two[2] == 2  # 1 thread: one fold at a time; 2: two folds at once
    assert two[0] == one[0] and two[1] == one[1]  # the same rows and out-of-fold probabilities, exactly
    assert torch.get_num_threads() == 2  # the caller's thread count is given back
    fractions = [e.fraction for e in two[3] if e.kind == "train"]
    assert max(fractions) <= 1.0 and fractions[-1] > 0.6  # one bar over the models training at once


def test_a_stop_while_folds_run_side_by_side_ends_every_fold_thread(nested, torch_threads_set):
    import threading

    plate, labels = nested
    torch_threads_set(2)
    explainer = Explainer(plate, labels, ExplainConfig(reference="negative", train=TINY))
    run = explainer.run()
    for event in run:
        if event.kind == "train" and event.side_by_side == 2 and event.train_event.step >= 5:
            break
    run.close()  # Stop: both running folds end at their next step, neither is kept
    assert not [t for t in threading.enumerate() if t.name.startswith("dcmix-fold")]
    assert explainer.result.rows == [] and explainer.panel is None and not explainer.result.complete


@pytest.mark.parametrize("how", ["stop", "interrupt while waiting"])
def test_a_stop_keeps_a_fold_that_finished_before_the_one_beside_it(nested, torch_threads_set, monkeypatch, how):
    """Fold 2 ends while fold 1 (slowed here) still trains beside it; a Stop then keeps fold 2, though
    the rows take finished folds in fold order and fold 1 never finished. The same for Ctrl-C / SIGTERM
    arriving while the engine waits for its folds' next event (where the CLI spends its time)."""
    import queue
    import threading
    import time

    from napari_dcmix.training import explain_coupled
    from napari_dcmix.training import trainer as trainer_module

    interrupt = []

    class InterruptibleQueue(queue.Queue):
        def get(self, *args, **kwargs):
            if interrupt:  # once, as a signal is
                interrupt.pop()
                raise KeyboardInterrupt
            return super().get(*args, **kwargs)

    monkeypatch.setattr(explain_coupled.queue, "Queue", InterruptibleQueue)

    plate, labels = nested
    torch_threads_set(2)
    real_init, made = trainer_module.Trainer.__init__, []

    def first_fold_is_slow(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        made.append(self)
        if len(made) == 1:
            real_run = self.run

            def slow_run():
                for event in real_run():
                    time.sleep(0.05)
                    yield event
            self.run = slow_run

    monkeypatch.setattr(trainer_module.Trainer, "__init__", first_fold_is_slow)
    explainer = Explainer(plate, labels, ExplainConfig(reference="negative", train=TINY))
    run = explainer.run()
    event = next(run)
    while not (event.kind == "train" and event.phenotype == "fold 3/3"):  # starts once fold 2 has finished
        assert event.kind != "row"  # fold 1 is still training: nothing is handed on in fold order
        event = next(run)
    if how == "stop":
        run.close()
    else:
        interrupt.append(True)  # the engine's next wait for an event is interrupted
        with pytest.raises(KeyboardInterrupt):
            while True:
                next(run)
    matrix = explainer.result
    assert [r.phenotype for r in matrix.rows] == ["a_up", "b_up", ALL_PHENOTYPES]
    assert all(r.partial and r.repeats == 1 for r in matrix.rows) and not matrix.complete
    assert set(explainer.fold_predictions[0]) == set(made[1].test_predictions)  # fold 2's wells, judged by it
    assert len(explainer.members) == 1 and explainer.panel is None
    assert not [t for t in threading.enumerate() if t.name.startswith("dcmix-fold")]  # every fold thread ended


def test_one_fold_at_a_time_on_a_gpu_under_torchrun_or_with_one_thread(torch_threads_set):
    from types import SimpleNamespace

    import torch

    from napari_dcmix.training.explain_coupled import side_by_side

    def trainer(device="cpu", world=1):
        return SimpleNamespace(device=torch.device(device), dist=SimpleNamespace(active=world > 1))

    torch_threads_set(2)
    assert side_by_side(trainer(), 3) == 2 and side_by_side(trainer(), 1) == 1
    assert side_by_side(trainer("cuda"), 3) == 1 and side_by_side(trainer(world=2), 3) == 1
    torch_threads_set(1)
    assert side_by_side(trainer(), 3) == 1
