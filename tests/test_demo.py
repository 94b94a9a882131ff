"""The demo's viewer: four docks, the plate open in the browser and shared with the other docks; the
unattended run takes every screenshot, explains every phenotype and reports Z′ for each of them."""

from conftest import SIGNAL_PATTERN, write_phenotype_plate
from napari_dcmix.demo import DOCKS, _Unattended, open_viewer
from napari_dcmix.training import TrainConfig
from napari_dcmix.training.controls import EVERY_PHENOTYPE
from napari_dcmix.widgets.session import get_session

TINY = TrainConfig(eval_every=20, patience=100, tile=16, batch_size=16, coverage=2, device="cpu", seed=0)


def test_demo_opens_the_plate_with_all_docks(make_napari_viewer, imagexpress_plate, qtbot):
    viewer = make_napari_viewer()
    viewer, docks = open_viewer(str(imagexpress_plate), viewer=viewer)
    assert set(docks) == set(DOCKS)
    session = get_session(viewer)
    assert session.plate is not None and session.plate.root == imagexpress_plate
    assert [layer.name for layer in viewer.layers][:3] == ["w1", "w2", "w3"]
    browser = docks["Plate browser"]

    def idle(dock=browser):  # bound now: the names are deleted below for napari's leak check
        return not dock.busy()

    qtbot.waitUntil(idle, timeout=20000)
    browser.stop_workers()
    del docks, browser, session, idle  # napari's leak check runs after the test


def test_unattended_demo_takes_every_screenshot(make_napari_viewer, qtbot, tmp_path, capsys):
    root, labels = write_phenotype_plate(tmp_path / "plate", {"alpha_up": 1, "beta_up": 2})
    viewer, docks = open_viewer(str(root), viewer=make_napari_viewer(), pattern=SIGNAL_PATTERN, labels=labels,
                                column="phenotype")
    train, explain = docks["Train"], docks["Explain per phenotype"]
    for panel in (train, explain):  # the demo's workflow at test size
        panel.base_config = TINY
    train.form.load(TINY)
    train.form["steps"].value = 40
    explain.steps.setValue(40)
    explain.folds.setValue(2)
    driver = _Unattended(viewer, docks, tmp_path / "shots", close_when_done=False)
    driver.start()
    qtbot.waitUntil(lambda: not driver.timer.isActive(), timeout=300_000)
    names = [p.name for p in driver.shots]
    assert names == ["01_plate_browser.png", "02_trained_importance_composite.png", "05_per_phenotype_matrix.png",
                     "03_applied_predictions.png", "04_side_by_side.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in driver.shots)
    assert [r.phenotype for r in explain.matrix.rows][:2] == ["alpha_up", "beta_up"]
    apply = docks["Apply"]
    assert apply.positive_combo.currentText() == EVERY_PHENOTYPE  # no hand-picked pair
    out = capsys.readouterr().out
    assert "explain: alpha_up" in out and "Z′ vs negative on P(phenotype vs negative): alpha_up" in out
    stages = [line.split()[1] for line in out.splitlines() if line.startswith("demo: ")]
    assert stages[:5] == ["plate", "train", "explain", "apply", "side"]  # where the time went, stage by stage
    docks["Plate browser"].stop_workers()
    del docks, train, explain, apply
