"""Opening a plate is one way through, whichever door the user takes (the dock's form, File > Open,
the demo's API): the plate and its labels reach the session in one ``events.plate``, the labels are
applied once, the CSV field is filled once, the folder is indexed once, and the Train dock sees plate
and labels together."""

from __future__ import annotations

import pytest
from conftest import write_imagexpress

import napari_dcmix.plate.plate as plate_module
from napari_dcmix.widgets.session import get_session
from napari_dcmix.widgets.train.dock import TrainWidget

LABELS = "well,phenotype\nB02,negative\nB03,hit\nC02,hit\nC03,negative\n"
EXPECTED = {("Plate1", "B02"): "negative", ("Plate1", "B03"): "hit", ("Plate1", "C02"): "hit",
            ("Plate1", "C03"): "negative"}


class Counts:
    """Counts what the open did: publications, label applications, CSV fields filled, index builds,
    and what the Train dock could see at the moment the plate was published."""

    def __init__(self, session, dock, train, monkeypatch):
        self.reset()
        session.events.plate.connect(self._plate)
        session.events.labels.connect(self._labels)
        self.session, self.train = session, train
        replace, set_csv = session.book.replace, dock.open_panel.set_csv

        def counted_replace(*args, **kwargs):
            self.applied += 1
            return replace(*args, **kwargs)

        def counted_set_csv(*args, **kwargs):
            self.csv_set += 1
            return set_csv(*args, **kwargs)

        monkeypatch.setattr(session.book, "replace", counted_replace)
        monkeypatch.setattr(dock.open_panel, "set_csv", counted_set_csv)
        self.builds = count_index_builds(monkeypatch)

    def reset(self):
        self.plates = self.labels_signals = self.applied = self.csv_set = 0
        if hasattr(self, "builds"):
            self.builds.clear()
        self.seen_by_train: list[tuple] = []

    def _plate(self, plate):
        self.plates += 1
        self.seen_by_train.append((plate, dict(self.session.labels), self.session.label_column))

    def _labels(self, *_):
        self.labels_signals += 1


def count_index_builds(monkeypatch) -> list:
    """Every folder indexed from now on (the list grows by one per index build)."""
    builds, build = [], plate_module.iter_index

    def counted_build(root, *args, **kwargs):
        builds.append(root)
        return (yield from build(root, *args, **kwargs))

    monkeypatch.setattr(plate_module, "iter_index", counted_build)
    return builds


def _setup(browser, tmp_path, monkeypatch):
    viewer, dock = browser()
    train = TrainWidget(viewer)
    viewer.window.add_dock_widget(train, name="Train")
    root = write_imagexpress(tmp_path / "ixm")
    csv_path = tmp_path / "ixm_labels.csv"  # beside the plate: the CSV that obviously belongs to it
    csv_path.write_text(LABELS)
    session = get_session(viewer)
    return viewer, dock, train, root, csv_path, session, Counts(session, dock, train, monkeypatch)


def _assert_one_way_through(counts, dock, train, session, root, csv_path):
    assert counts.plates == 1, "the session must publish the plate once"
    assert counts.applied == 1, "the labels must be applied once"
    assert counts.labels_signals == 0, "events.plate carries the labels: no second event"
    assert counts.csv_set == 1, "the CSV field must be filled once"
    assert len(counts.builds) == 1, "the folder must be indexed once"
    plate, labels, column = counts.seen_by_train[0]
    assert plate.root == root and labels == EXPECTED and column == "phenotype"  # together, in one signal
    assert session.labels == EXPECTED and session.labels_file.path == csv_path
    assert dock.open_panel.csv_path == str(csv_path) and dock.open_panel.column == "phenotype"
    assert dock.label_panel.loaded_csv == csv_path and not dock.label_panel.dirty
    assert "negative (2 wells)" in train.labels_label.text() and "hit (2 wells)" in train.labels_label.text()
    assert dock.grid.labels["B03"] == "hit"


@pytest.mark.parametrize("door", ["form", "api"])
def test_opening_from_the_dock_is_one_way_through(browser, qtbot, tmp_path, monkeypatch, door):
    viewer, dock, train, root, csv_path, session, counts = _setup(browser, tmp_path, monkeypatch)
    if door == "form":  # the user fills the form and presses Open plate
        dock.open_panel.path_edit.setText(str(root))
        dock.open_panel.csv_edit.setText(str(csv_path))
        counts.csv_set = 0  # typing the path is not the open
        dock.open_panel.open_button.click()
    else:  # the demo's call
        dock.open_plate(str(root), labels_csv=csv_path, column="phenotype")
    _assert_one_way_through(counts, dock, train, session, root, csv_path)
    qtbot.waitUntil(lambda: not dock.busy(), timeout=10000)
    train.shutdown()


def test_file_open_is_one_way_through(browser, qtbot, tmp_path, monkeypatch):
    viewer, dock, train, root, csv_path, session, counts = _setup(browser, tmp_path, monkeypatch)
    viewer.open(str(root), plugin="napari-dcmix")  # File > Open: the dock follows the reader's layers
    qtbot.waitUntil(lambda: dock.plate is not None, timeout=5000)
    _assert_one_way_through(counts, dock, train, session, root, csv_path)
    assert dock.current_key is not None and session.site == dock.current_key
    assert dock.plate.read_site(dock.current_key).shape[0] == 3  # the reader's plate, handed over, reads on
    qtbot.waitUntil(lambda: not dock.busy(), timeout=10000)
    train.shutdown()


def test_a_dock_opened_after_file_open_reuses_the_readers_index(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    from napari_dcmix._reader import take_opened_plate
    from napari_dcmix.widgets.plate_browser.dock import PlateBrowserWidget

    viewer = make_napari_viewer(show=True)
    root = write_imagexpress(tmp_path / "ixm")
    builds = count_index_builds(monkeypatch)
    viewer.open(str(root), plugin="napari-dcmix")  # File > Open before any plate browser exists
    dock = PlateBrowserWidget(viewer)  # the Plugins menu: it follows the layers already there
    viewer.window.add_dock_widget(dock, name="Plate browser")
    qtbot.waitUntil(lambda: dock.plate is not None, timeout=5000)
    assert builds == [root] and dock.plate.root == root
    assert take_opened_plate(root) is None, "the hand-over is forgotten once taken: no plate kept alive there"
    dock.open_plate(str(root))  # opening it again from the form indexes it afresh (files may have changed)
    assert len(builds) == 2
    qtbot.waitUntil(lambda: not dock.busy(), timeout=10000)


def test_loading_another_column_applies_it_once(browser, qtbot, tmp_path, monkeypatch):
    viewer, dock, train, root, csv_path, session, counts = _setup(browser, tmp_path, monkeypatch)
    csv_path.write_text("well,phenotype,batch\nB02,negative,b1\nB03,hit,b2\n")
    dock.open_plate(str(root), labels_csv=csv_path, column="phenotype")
    counts.reset()
    dock.open_panel.column_combo.setCurrentText("batch")
    dock.open_panel.column_changed.emit("batch")  # what choosing the column does
    assert (counts.plates, counts.applied, counts.labels_signals, counts.csv_set) == (0, 1, 1, 1)
    assert session.labels == {("Plate1", "B02"): "b1", ("Plate1", "B03"): "b2"} and session.label_column == "batch"
    assert "b1 (1 wells)" in train.labels_label.text()
    assert dock.open_panel.column == "batch"
    qtbot.waitUntil(lambda: not dock.busy(), timeout=10000)
    train.shutdown()


@pytest.mark.parametrize("door", ["load button", "typed"])
def test_choosing_another_csv_loads_it_once(browser, qtbot, tmp_path, monkeypatch, door):
    import napari_dcmix.widgets.plate_browser.open_panel as open_panel
    from qtpy.QtWidgets import QPushButton

    viewer, dock, train, root, csv_path, session, counts = _setup(browser, tmp_path, monkeypatch)
    dock.open_plate(str(root))  # with the CSV beside it
    other = tmp_path / "rescored.csv"
    other.write_text("well,batch,class\nB02,b1,dead\nC03,b2,alive\n")
    counts.reset()
    if door == "load button":  # Labels > Load labels… and the file dialog's choice
        monkeypatch.setattr(open_panel.QFileDialog, "getOpenFileName", lambda *a, **k: (str(other), ""))
        load = next(b for b in dock.label_panel.findChildren(QPushButton) if b.text() == "Load labels…")
        load.click()
    else:  # typed into the form's Labels CSV field
        dock.open_panel.csv_edit.setText(str(other))
        dock.open_panel.csv_edit.setModified(True)
        dock.open_panel.csv_edit.editingFinished.emit()
    assert (counts.plates, counts.applied, counts.labels_signals, counts.csv_set) == (0, 1, 1, 1)
    assert session.labels == {("Plate1", "B02"): "dead", ("Plate1", "C03"): "alive"}
    assert session.label_column == "class" and session.labels_file.path == other
    assert dock.open_panel.csv_path == str(other) and dock.open_panel.column == "class"
    assert [dock.open_panel.column_combo.itemText(i) for i in range(dock.open_panel.column_combo.count())] == \
        ["batch", "class"]
    assert dock.label_panel.loaded_csv == other and "dead (1 wells)" in train.labels_label.text()
    qtbot.waitUntil(lambda: not dock.busy(), timeout=10000)
    train.shutdown()


def test_a_csv_that_cannot_be_loaded_is_shown_and_changes_nothing(browser, qtbot, tmp_path, monkeypatch):
    viewer, dock, train, root, csv_path, session, counts = _setup(browser, tmp_path, monkeypatch)
    dock.open_plate(str(root))
    bad = tmp_path / "no_wells.csv"
    bad.write_text("position,class\nB02,dead\n")
    errors = []
    monkeypatch.setattr("napari_dcmix.widgets.plate_browser.opening.notifications.show_error", errors.append)
    counts.reset()
    dock.open_panel.csv_chosen.emit(str(bad))
    assert len(errors) == 1 and "no 'well' column" in errors[0]
    assert (counts.applied, counts.labels_signals, counts.csv_set) == (0, 0, 1)
    assert session.labels == EXPECTED and session.labels_file.path == csv_path  # nothing lost
    assert dock.open_panel.csv_path == str(bad)
    qtbot.waitUntil(lambda: not dock.busy(), timeout=10000)
    train.shutdown()
