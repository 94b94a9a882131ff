"""Figures from the Apply dock: the plate map PNG (same drawing as ``predict --plate-map``) and the
top-k montage, as a napari layer or a PNG (same as ``predict --montage``).

Kept out of the dock module so the dock stays thin; it reads the dock's results model, never changes it.
The montage reads k sites per class, so it is built in a napari thread worker.
"""

from __future__ import annotations

from pathlib import Path

from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget

from ..._io import default_export_path
from ...errors import DcmixError
from ...figures.plate_map import PREDICTION

MONTAGE_LAYER = "DCMIX top sites"
CAPTIONS_LAYER = "DCMIX top sites: captions"
TILE = 128


def _montage_job(plate, site_probs, classes, k, tile):
    """Worker body: (picks, image, tile, problems); reads sites off the GUI thread."""
    from ...figures.montage import montage_image, top_sites

    picks = top_sites(site_probs, classes, k)
    first = next((p.key for ps in picks.values() for p in ps), None)
    if first is not None:
        tile = max(16, min(tile, *plate.read_site(first).shape[1:]))
    image, problems = montage_image(plate, picks, k, tile)
    return picks, image, tile, problems


class ExportPanel(QWidget):
    """Plate map and montage controls under the Apply dock's CSV export."""

    def __init__(self, dock):
        super().__init__()
        self.dock = dock
        self.value_combo = QComboBox(toolTip="Colour wells by the predicted class, or by one class's probability")
        self.map_button = QPushButton("Save plate map…", toolTip="A PNG plate heat map, as 'predict --plate-map'")
        self.k_spin = QSpinBox(minimum=1, maximum=50, value=6, toolTip="Sites per class in the montage")
        self.montage_button = QPushButton("Montage layer", toolTip="The k most confident sites per class, in napari")
        self.save_montage_button = QPushButton("Save montage…", toolTip="The same montage as a captioned PNG")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widgets in ((QLabel("Plate map"), self.value_combo, self.map_button),
                        (QLabel("Top sites k"), self.k_spin, self.montage_button, self.save_montage_button)):
            row = QHBoxLayout()
            for w in widgets:
                row.addWidget(w)
            layout.addLayout(row)
        # bound methods only: Qt holds lambdas strongly, and a lambda holding the dock leaks the viewer
        self.map_button.clicked.connect(self._map_clicked)
        self.montage_button.clicked.connect(self._montage_clicked)
        self.save_montage_button.clicked.connect(self._save_montage_clicked)
        dock.session.events.predictions.connect(self._refresh_values)
        dock.session.events.model.connect(self._refresh_values)  # the classes change with the model, not per site
        self._handle, self._pending = None, None
        self._refresh_values()

    def _map_clicked(self, *_) -> None:
        self.save_plate_map()

    def _montage_clicked(self, *_) -> None:
        self.montage(None)

    def _save_montage_clicked(self, *_) -> None:
        path = self._ask_path("montage")
        if path:
            self.montage(path)

    # --- what the dock has ----------------------------------------------------------------------
    def _results(self):
        """(plate, classes, model, site -> probabilities); None with a warning when nothing is predicted."""
        results = self.dock.results
        plate, model, site_probs = self.dock.session.plate, results.model, results.site_probabilities()
        if plate is None or model is None or not site_probs:
            show_warning("nothing to draw yet: click 'Predict plate' first")
            return None
        return plate, list(results.classes), model, site_probs

    def _refresh_values(self, *_) -> None:
        classes = list(self.dock.results.classes or (self.dock.model.classes if self.dock.model else []))
        keep = self.value_combo.currentText()
        self.value_combo.clear()
        self.value_combo.addItems([PREDICTION] + [c for c in classes if c != PREDICTION])
        if keep in classes:
            self.value_combo.setCurrentText(keep)

    def _ask_path(self, what: str) -> str | None:
        plate = self.dock.session.plate
        default = default_export_path(plate.location if plate is not None else None, f"{{plate}}_{what}.png")
        path, _ = QFileDialog.getSaveFileName(self, f"Save the {what}", str(default), "PNG images (*.png)")
        return path or None

    def _checked_path(self, path, plate) -> Path | None:
        """``path`` as a .png, or None (with the notification) where the output rule forbids it."""
        out = Path(path).expanduser().resolve()
        problem = self.dock.session.output_problem(out, "figure")
        if problem:
            show_error(problem)
            return None
        return out if out.suffix.lower() == ".png" else out.with_suffix(out.suffix + ".png")

    # --- plate map ------------------------------------------------------------------------------
    def save_plate_map(self, path: str | None = None) -> list[Path]:
        from ...figures.plate_map import save_plate_maps
        from ...training.predictor import well_probabilities

        results = self._results()
        if results is None:
            return []
        plate, classes, model, site_probs = results
        path = path or self._ask_path("plate_map")
        out = self._checked_path(path, plate) if path else None
        if out is None:
            return []
        try:
            written = save_plate_maps(out, plate, well_probabilities(site_probs), classes,
                                      value=self.value_combo.currentText() or PREDICTION,
                                      model_name=model.display_name)
        except DcmixError as err:
            show_error(str(err))
            return []
        show_info("plate map written to " + ", ".join(str(p) for p in written))
        return written

    # --- montage --------------------------------------------------------------------------------
    def montage(self, path: str | None) -> None:
        """Build the montage in the background; then show it as a layer, or write it to ``path``."""
        results = self._results()
        if results is None or (self._handle is not None and self._handle.running):
            return
        plate, classes, model, site_probs = results
        out = self._checked_path(path, plate) if path else None
        if path and out is None:
            return
        k = self.k_spin.value()
        self.montage_button.setEnabled(False)
        self.save_montage_button.setEnabled(False)
        self._pending = (k, plate.name, model.display_name, out)
        self._handle = self.dock.run(_montage_job, plate, site_probs, classes, k, TILE, on_return=self._montage_done,
                                     on_error=self._montage_error, on_finish=self._montage_finished)

    def _montage_finished(self) -> None:
        self.montage_button.setEnabled(True)
        self.save_montage_button.setEnabled(True)

    def _montage_error(self, err) -> None:
        show_error(str(err) if isinstance(err, DcmixError) else f"the montage failed ({type(err).__name__}: {err})")

    def _montage_done(self, result) -> None:
        (k, plate_name, model_name, out), self._pending = self._pending, None
        picks, image, tile, problems = result
        if problems:
            show_warning(f"{len(problems)} sites of the montage could not be read: {problems[0]}")
        if out is not None:
            from ..._io import atomic_write_bytes
            from ...figures.montage import montage_figure
            from ...figures.plate_map import figure_png

            try:
                fig = montage_figure(image, picks, k, tile, plate_id=plate_name, model_name=model_name)
                atomic_write_bytes(out, figure_png(fig))
            except DcmixError as err:
                return show_error(str(err))
            return show_info(f"montage written to {out}")
        self._show_layers(image, picks, k, tile)

    def _show_layers(self, image, picks, k, tile, gap: int = 6) -> None:
        """One RGB image layer, and a points layer naming the class of each row (on its first tile);
        its tile points carry ``well s<site> · p`` as a feature, shown when hovering a tile's centre.
        Text in napari keeps its screen size, so per-tile captions would overlap when zoomed out."""
        viewer = self.dock.viewer
        positions, labels, captions = [], [], []
        for r, (cls, row) in enumerate(picks.items()):
            # napari's y axis points down: a "lower_left" anchor hangs the text below the point's box
            positions.append([r * (tile + gap) + 2 - tile / 8, tile / 8 + 2])
            labels.append(cls)
            captions.append(f"{cls}: {len(row[:k])} sites")
            for i, pick in enumerate(row[:k]):
                positions.append([r * (tile + gap) + tile / 2, i * (tile + gap) + tile / 2])
                labels.append("")
                captions.append(f"{cls}: {pick.key.well} s{pick.key.site} · p {pick.probability:.2f}")
        for name in (MONTAGE_LAYER, CAPTIONS_LAYER):
            if name in viewer.layers:
                viewer.layers.remove(name)
        viewer.add_image(image, rgb=True, name=MONTAGE_LAYER)
        viewer.add_points(positions, name=CAPTIONS_LAYER, size=tile / 4, face_color="transparent", border_width=0,
                          features={"label": labels, "caption": captions},
                          text={"string": "{label}", "color": "white", "size": 11, "anchor": "lower_left"})
        viewer.layers.selection.active = viewer.layers[MONTAGE_LAYER]
