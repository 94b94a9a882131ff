"""How a training run is shown (no Qt): the status line, times, the live curves, why it cannot start."""

import math
from types import SimpleNamespace

from napari_dcmix.training.progress import Curves, MAX_CURVE_POINTS, format_seconds, start_problem, status_text


def test_start_problem_and_times_in_words():
    assert start_problem(None, {}, {}).startswith("no plate")
    assert "no wells are labeled" in start_problem(object(), {}, {})
    assert format_seconds(75) == "1 min 15 s" and format_seconds(math.nan) == "…"
    assert format_seconds(3725) == "1 h 02 min" and format_seconds(9) == "9 s"


def _event(kind, **fields):
    base = dict(step=0, total_steps=100, epoch=0, epochs=4, loss=1.0, train_accuracy=0.5, val_accuracy=0.5,
                eta=30.0, message="", elapsed=0.0, best_val_accuracy=0.9)
    return SimpleNamespace(kind=kind, **{**base, **fields})


def test_curves_record_steps_and_rounds_and_stay_bounded():
    curves = Curves()
    assert curves.add(_event("start")) is False and curves.steps_per_epoch == 25
    assert curves.add(_event("step", step=50, loss=0.7))
    assert curves.step_x == [2.0] and curves.step_loss == [0.7]
    assert curves.add(_event("epoch", epoch=1, loss=0.6, train_accuracy=0.8, val_accuracy=0.75))
    assert curves.epochs == [1] and curves.val_accuracy == [0.75]
    for step in range(3 * MAX_CURVE_POINTS):
        curves.add(_event("step", step=step))
    assert len(curves.step_x) <= MAX_CURVE_POINTS  # long runs stay cheap to draw


def test_status_line_says_where_how_good_and_how_long():
    text = status_text(_event("epoch", step=50, epoch=2, loss=0.25, train_accuracy=0.9, val_accuracy=0.8))
    assert text == "step 50/100 · round 2/4 · loss 0.250 · train acc 90% · val acc 80% · ETA 30 s"
    assert "validation accuracy 90%" in status_text(_event("done", elapsed=61, message="stopped early"))
