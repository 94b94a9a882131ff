"""The Apply dock's results model (no Qt): what a run streamed in, the wells' means, the rows, the sorting."""

import numpy as np
import pytest

from napari_dcmix.plate import SiteKey
from napari_dcmix.widgets.apply.results import PredictionResults, counts_text, sort_key


class _Model:
    classes = ["neg", "pos"]


def test_results_average_sites_per_well_and_report_only_changed_wells():
    results, model = PredictionResults(), _Model()
    results.start(model)
    results.add(SiteKey("P", "A01", 1), np.array([0.8, 0.2]))
    results.add(SiteKey("P", "A01", 2), np.array([0.4, 0.6]))
    results.add(SiteKey("P", "B01", 1), np.array([0.1, 0.9]))
    changed = results.take_changed_wells()
    assert set(changed) == {("P", "A01"), ("P", "B01")} and results.sites == 3
    assert changed[("P", "A01")]["probabilities"]["pos"] == pytest.approx(0.4)  # the mean over its two sites
    assert changed[("P", "B01")]["prediction"] == "pos"
    assert results.take_changed_wells() == {}  # nothing new streamed in
    results.add(SiteKey("P", "B01", 2), np.array([0.3, 0.7]))
    assert set(results.take_changed_wells()) == {("P", "B01")}
    results.start(model)  # the same model goes on: its results stay
    assert results.sites == 4
    results.start(type("Other", (), {"classes": ["a", "b"]})())  # another model: start empty
    assert results.sites == 0 and results.classes == ["a", "b"] and results.site_probabilities() == {}


def test_sort_keys_are_typed():
    assert sort_key("well", "B10") > sort_key("well", "B02") > sort_key("well", "A12")
    assert sort_key("confidence", "0.900000") > sort_key("confidence", "0.100000")
    assert sort_key("p_x", "10.0") > sort_key("p_x", "9.0")
    assert sort_key("site", "10") > sort_key("site", "9")


def test_counts_text():
    rows = [{"prediction": "a"}, {"prediction": "b"}, {"prediction": "a"}]
    assert counts_text(rows, ["a", "b", "c"], "wells") == "a: 2 · b: 1  (3 wells)"
    assert counts_text([], ["a"], "wells") == ""