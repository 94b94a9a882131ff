"""The plate browser dock: open a plate, click through its wells, see each well's channels as
napari layers, label wells. Wiring only; drawing, pixels and logic live in the sibling modules.

It opens plates through ``opening`` (which publishes plate and labels on the viewer's session in
one ``events.plate``) and shows them from that event like every other dock; it publishes the shown
site, follows plates opened with File > Open (the reader's layers carry ``META_KEY`` metadata), and
never freezes the viewer: statistics and thumbnails are computed in napari thread workers.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from napari.utils import notifications
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (QCheckBox, QComboBox, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout)

from ..._reader import take_opened_plate
from ...errors import NO_PLATE, DcmixError, SourceUnavailable
from ...plate import Plate, SiteKey, well_position
from ...plate.location import PlateLocation, is_url
from ...plate.navigation import step_in_order
from ...training.jobs import suggestion_updates
from ...training.suggest import candidate_wells
from ..jobs import user_message
from .background import PlateBackground
from .condition_filter import ConditionFilter
from .label_panel import LabelPanel
from .open_panel import OpenPanel
from .grid import GRID_HELP, GRID_HINT, PlateGrid
from .opening import load_labels_into, open_plate_into
from .problems_panel import ProblemsPanel
from .url_form import OpenUrlForm
from .suggest_panel import SuggestPanel
from ..dock_base import DcmixDock
from ..jobs import TORCH_THREADS
from ..site_layers import apply_plate_contrast, plugin_layers, provisional_stats, show_site
from .viewer_hooks import NEXT_KEY, PREV_KEY, bind_well_keys, plate_metadata, unbind_well_keys, warm_up_layers


class PlateBrowserWidget(DcmixDock):
    """Dock widget; npe2 passes the viewer as ``napari_viewer``."""

    def __init__(self, napari_viewer):
        super().__init__(napari_viewer)
        napari_viewer = self.viewer
        self.plate_id = ""                # which plate of a multi-plate folder the map shows
        self.background = PlateBackground(self, self.session.set_stats, self._on_thumbnail)
        self._pending_follow: dict | None = None
        self._opening = False             # open_plate is publishing: it starts the background itself
        self._opener = None               # the Job reading a URL's metadata, while it runs
        self._open_tag = 0                # which background open is the latest (older results are dropped)
        self._wanted: SiteKey | None = None  # the site being fetched in the background to be shown
        self.suggest_job = None           # the Job ranking wells to label, while it runs
        self._suggest_run: tuple = ()     # (model, plate, ranking once it arrives) of that job
        self._build_ui()

        events = self.session.events
        events.plate.connect(self._on_session_plate)
        events.labels_file.connect(self._show_labels_file)
        self.session.on_labels(self._refresh_labels)
        self.session.on_predictions(self._on_predictions)
        events.site.connect(self._on_session_site)
        events.stats.connect(self._on_stats)
        events.suggestions.connect(self._show_suggestions)
        napari_viewer.layers.events.inserted.connect(self._on_layer_inserted)
        bind_well_keys(napari_viewer, self)
        QTimer.singleShot(0, self._follow_existing_layers)
        QTimer.singleShot(0, warm_up_layers)

    # --- the session's state, read where it lives ------------------------------------------------
    @property
    def plate(self) -> Plate | None:
        return self.session.plate

    @property
    def stats(self):
        """The plate-wide ChannelStats once computed in the background (the session's)."""
        return self.session.stats

    @property
    def current_key(self) -> SiteKey | None:
        """The site shown (the session's)."""
        return self.session.site

    # --- UI -----------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        layout = QVBoxLayout(self.scroll_content(sideways=True))
        self.open_panel = OpenPanel()
        self.open_panel.open_requested.connect(self._open_clicked)
        self.open_panel.csv_chosen.connect(self.load_labels)
        self.open_panel.column_changed.connect(self._column_changed)
        self.open_panel.plate_selected.connect(self.show_plate_id)
        layout.addWidget(self.open_panel)
        self.problems_panel = ProblemsPanel()  # the data-quality report of the plate and its labels
        self.problems_panel.well_requested.connect(lambda well: self.show_well(self.plate_id, well))
        layout.addWidget(self.problems_panel)

        self.grid = PlateGrid()
        self.grid.well_clicked.connect(self.show_well)
        self.grid.selection_changed.connect(self._selection_changed)
        layout.addWidget(self.grid)
        hint = QLabel(GRID_HINT, toolTip=f"{GRID_HELP} {NEXT_KEY}/{PREV_KEY} move between wells from anywhere.")
        hint.setWordWrap(True)
        hint.setStyleSheet("color: gray; font-size: 11px;")
        layout.addWidget(hint)

        nav = QHBoxLayout()
        self.prev_button = QPushButton("◀", toolTip=f"Previous well ({PREV_KEY}, or ← on the plate map)")
        self.next_button = QPushButton("▶", toolTip=f"Next well ({NEXT_KEY}, or → on the plate map)")
        for button in (self.prev_button, self.next_button):
            button.setFixedWidth(34)
        self.prev_button.clicked.connect(self.previous_well)
        self.next_button.clicked.connect(self.next_well)
        self.site_combo = QComboBox(toolTip="Which field of view of the well to show")
        self.site_combo.activated.connect(self._site_chosen)
        self.mosaic_box = QCheckBox("All sites", toolTip="Tile all sites of the well into one image per channel")
        self.mosaic_box.toggled.connect(self._mosaic_toggled)
        self.where = QLabel("Site")
        for widget, stretch in ((self.prev_button, 0), (self.next_button, 0), (self.where, 0),
                                (self.site_combo, 1), (self.mosaic_box, 0)):
            nav.addWidget(widget, stretch)
        layout.addLayout(nav)

        view = QHBoxLayout()
        self.thumbs_box = QCheckBox("Thumbnails", checked=True,
                                    toolTip="Draw a small colour composite of each well (read in the background)")
        self.thumbs_box.toggled.connect(self.set_thumbnails)
        self.color_combo = QComboBox(toolTip="Colour wells by your labels or by a model's predictions")
        self.color_combo.addItems(["labels", "predictions"])
        self.color_combo.currentTextChanged.connect(self.grid.set_color_mode)
        view.addWidget(self.thumbs_box)
        view.addStretch(1)
        view.addWidget(QLabel("Colour by"))
        view.addWidget(self.color_combo)
        layout.addLayout(view)

        box = QGroupBox("Labels")
        box_layout = QVBoxLayout(box)
        self.label_panel = LabelPanel(self.session, self.selection)
        self.label_panel.load_requested.connect(self.open_panel.browse_csv)
        box_layout.addWidget(self.label_panel)
        self.conditions = ConditionFilter(self.session)  # the CSV's other columns: tooltips and a well filter
        self.conditions.conditions_shown.connect(self.grid.set_conditions)
        self.conditions.wells_matched.connect(self.grid.set_selection)
        box_layout.addWidget(self.conditions)
        layout.addWidget(box)
        self.suggest_panel = SuggestPanel(self.session)  # wells a label would teach most: outlined, stepped through
        self.suggest_panel.suggest_requested.connect(self.suggest_wells)
        self.suggest_panel.stop_requested.connect(self.stop_suggesting)
        self.suggest_panel.step_requested.connect(self.step_suggestion)
        layout.addWidget(self.suggest_panel)
        self.grid.assign_requested.connect(self.label_panel.assign_index)
        self.grid.unlabel_requested.connect(self.label_panel.unlabel)
        self._update_controls()

    def _update_controls(self) -> None:
        has_plate, has_preds = self.plate is not None, bool(self.session.predictions)
        for w in (self.prev_button, self.next_button, self.mosaic_box, self.grid):
            w.setEnabled(has_plate)
        self.site_combo.setEnabled(has_plate and not self.mosaic_box.isChecked())
        self.color_combo.model().item(1).setEnabled(has_preds)
        if not has_preds and self.color_combo.currentIndex() == 1:
            self.color_combo.setCurrentIndex(0)

    # --- opening ------------------------------------------------------------------------------
    def _open_clicked(self) -> None:
        panel = self.open_panel
        self.open_plate(panel.path, panel.pattern, panel.csv_path, panel.column, channel_names=panel.channel_names)

    def open_plate(self, path, pattern: str | None = None, labels_csv=None, column: str | None = None, *,
                   show_first: bool = True, channel_names: str | None = None,
                   indexed: Plate | None = None, remote=None) -> Plate | None:
        """Open ``path`` with its labels through the one opener (errors -> notifications), then show
        its first well and read it in the background. ``channel_names`` (``w1=DNA,w2=ER``) renames
        channels for every dock and the saved model; ``indexed`` is ``path`` already indexed (File > Open).
        The opener publishes plate and labels on the session; this dock shows them from
        ``plate_changed``, as every other dock does.

        A plate at a URL (``remote``: how it is read, ``remote.RemoteSettings``) is opened on a worker
        with a progress bar: None is returned at once, and the session's plate event follows."""
        if indexed is None and path and is_url(str(path)):
            self._open_in_background(str(path), pattern, labels_csv, column, show_first, channel_names, remote)
            return None
        self._opening = True
        try:
            plate = open_plate_into(self.session, path, pattern, labels_csv, column, channel_names, indexed)
        finally:
            self._opening = False
        if plate is None:
            return None
        if show_first and self.grid.sites:
            first = min(self.grid.sites, key=well_position)
            self.grid.anchor = first
            self.grid.set_selection([first])
            self.show_well(self.plate_id, first)
        self.background.start(plate)  # after the first well: its reads do not compete with the open
        return plate

    def _open_in_background(self, url: str, pattern, labels_csv, column, show_first: bool, channel_names,
                            remote) -> None:
        """Read a URL's metadata on a worker (the viewer never waits on the network), then open it
        like any plate. A newer open, or the dock ending, drops a late result."""
        try:
            location = PlateLocation.of(url)
        except DcmixError as err:
            notifications.show_error(f"Could not open the plate: {err}")
            return
        if self._opener is not None:
            self._opener.cancel()
        self._open_tag += 1
        tag = self._open_tag
        self.open_panel.info.setText(f"Opening {location} … reading its metadata (no pixels yet)")
        self._opener = self.run(Plate.open_steps, str(location), pattern, channel_names, remote,
                                progress=f"Opening {location.name}", on_yield=partial(self._open_progress, tag),
                                on_return=partial(self._opened, tag, pattern, labels_csv, column, show_first),
                                on_error=partial(self._open_failed, tag))

    def _open_progress(self, tag: int, step) -> None:
        if tag == self._open_tag and self._opener is not None and not self.torn_down:
            self._opener.advance_to(step.done, step.total, step.what)

    def _opened(self, tag: int, pattern, labels_csv, column, show_first: bool, plate: Plate) -> None:
        if tag != self._open_tag or self.torn_down:
            return  # replaced by a newer open, or the dock ended
        self._opener = None
        self.open_plate(str(plate.location), pattern, labels_csv, column, show_first=show_first, indexed=plate)

    def _open_failed(self, tag: int, err) -> None:
        if tag != self._open_tag or self.torn_down:
            return
        self._opener = None
        if self.plate is None:
            self.open_panel.info.setText("No plate open.")
        notifications.show_error(f"Could not open the plate: {user_message(err)}")

    @property
    def opening(self) -> bool:
        """A URL's metadata is being read in the background."""
        return self._opener is not None

    def _show_new_plate(self, plate: Plate, pattern: str | None) -> None:
        """Show a plate the session just published, with the labels it came with."""
        self.background.cancel()  # the previous plate's workers quit; started again once the map shows
        self.open_panel.show_plate(plate, pattern)
        self.problems_panel.show_plate(plate)
        self.show_plate_id(plate.plates[0])
        self._show_labels_file()

    def _show_labels_file(self, *_) -> None:
        """The CSV the session's labels came from: the form's field, the conditions, the problems."""
        source = self.session.labels_file
        if source is None:
            self.open_panel.set_csv(None)
            return
        self.open_panel.set_csv(str(source.path), source.labels.column)
        self.conditions.load(source.path, self.plate, source.labels.column)
        self.problems_panel.set_source("labels", source.labels.problems)

    def show_plate_id(self, plate_id: str) -> None:
        """Show one plate of a multi-plate folder in the grid."""
        if self.plate is None:
            return
        self.plate_id = plate_id
        fmt = self.plate.format
        sites = {w: len(self.plate.sites_of(w, plate_id)) for w in self.plate.wells(plate_id)}
        self.grid.set_layout(plate_id, fmt.rows, fmt.cols, sites)
        for (pid, well), image in self.background.thumbs.items():
            if pid == plate_id:
                self.grid.set_thumbnail(well, image)
        if self.current_key is not None and self.current_key.plate == plate_id:
            self.grid.set_current(self.current_key.well)
        self._refresh_labels()
        self._on_predictions()
        self._show_suggestions()
        self._update_controls()
        if self.stats is not None:
            self._start_thumbnails()

    # --- background work ------------------------------------------------------------------------
    def _on_stats(self, stats) -> None:
        if stats is None:
            return
        apply_plate_contrast(self.viewer, stats)
        self._start_thumbnails()

    def _start_thumbnails(self) -> None:
        if self.thumbs_box.isChecked():
            self.background.start_thumbnails(self.plate, self.stats, self.plate_id, self.grid.sites)

    def _on_thumbnail(self, plate_id: str, well: str, image, problem) -> None:
        if plate_id == self.plate_id:
            self.grid.set_thumbnail(well, image, problem)

    def busy(self) -> bool:
        """True while statistics or thumbnails are being computed in the background."""
        return self.background.busy()

    @property
    def thumbnails_running(self) -> bool:
        return self.background.thumbnails_running

    def set_thumbnails(self, on: bool) -> None:
        """Toggle the thumbnails; turning them off cancels the background reading."""
        if self.thumbs_box.isChecked() != on:
            self.thumbs_box.setChecked(on)
            return
        self.grid.set_thumbnails_visible(on)
        if on:
            self._start_thumbnails()
        else:
            self.background.stop_thumbnails()

    def stop_workers(self) -> None:
        """Cancel all background work and wait for its threads."""
        self.background.shutdown()

    def on_teardown(self) -> None:
        """The dock ends: its well keys leave the viewer (its jobs end after this)."""
        self.background.cancel()
        unbind_well_keys(self.viewer)

    # --- showing wells ------------------------------------------------------------------------
    def show_well(self, plate_id: str, well: str, site: int | None = None) -> bool:
        """Show ``well`` (``site``, else the site number shown before, else its first site)."""
        if self.plate is None:
            return False
        keys = self.plate.sites_of(well, plate_id)
        if not keys:
            notifications.show_warning(f"{well} has no images on this plate; choose a filled well.")
            return False
        want = site if site is not None else (self.current_key.site if self.current_key else None)
        key = next((k for k in keys if k.site == want), keys[0])
        return self.show_key(key)

    def show_key(self, key: SiteKey, fetched: bool = False) -> bool:
        """Show one site in place; an unreadable file becomes a notification and a red cross. A site of
        a plate at a URL that is not in memory yet is fetched in the background first (``fetched``:
        it just was), so the viewer never waits on the network."""
        mosaic = self.mosaic_box.isChecked()
        if not fetched and self.plate.is_remote:
            keys = self.plate.sites_of(key.well, key.plate) if mosaic else [key]
            if not all(self.plate.is_cached(k) for k in keys):
                self._fetch_then_show(key, keys)
                return True
        self._wanted = None
        try:
            creates = not set(self.plate.channels) <= set(plugin_layers(self.viewer))  # else contrast is kept
            stats = provisional_stats(self.plate, self.plate.read_site(key)) if self.stats is None and creates else None
            show_site(self.viewer, self.plate, key, mosaic=mosaic, pattern=self.session.pattern, stats=stats,
                      provisional=True)
        except DcmixError as err:
            self.grid.set_problem(key.well, str(err))
            notifications.show_error(f"{key.label()} could not be shown: {err}. Other wells still work.")
            return False
        if key.plate != self.plate_id:
            self.open_panel.set_plates(self.plate.plates, key.plate)
            self.plate_id = key.plate  # the map follows below, marking the new site
        self.session.set_site(key)  # the map marks it (_on_session_site), like a site another dock shows
        if self.grid.plate_id != key.plate:
            self.show_plate_id(key.plate)
        self.where.setText(f"{key.well} · site")
        self.where.setToolTip(f"Showing {key.label()}" + (" (all sites tiled)" if mosaic else ""))
        return True

    def _fetch_then_show(self, key: SiteKey, keys: list[SiteKey]) -> None:
        """Read ``keys`` on a worker, then show ``key`` unless the user has moved on meanwhile."""
        self._wanted = key
        self.where.setText(f"{key.well} · fetching…")
        self.where.setToolTip(f"Fetching {key.label()} from {self.plate.location}")
        plate = self.plate
        self.run(_read_sites, plate, keys, on_return=partial(self._fetched, plate, key),
                 on_error=partial(self._fetch_failed, plate, key))

    def _fetched(self, plate: Plate, key: SiteKey, _result) -> None:
        if self._wanted == key and self.plate is plate and not self.torn_down:
            self.show_key(key, fetched=True)

    def _fetch_failed(self, plate: Plate, key: SiteKey, err) -> None:
        if self._wanted != key or self.plate is not plate or self.torn_down:
            return
        self._wanted = None
        self.where.setText("Site")
        message, original = user_message(err), getattr(err, "original", err)
        if isinstance(original, DcmixError) and not isinstance(original, SourceUnavailable):
            self.grid.set_problem(key.well, message)  # the site itself (empty, damaged), not the server
        notifications.show_error(f"{key.label()} could not be shown: {message}. Other wells still work.")

    def _fill_sites(self, key: SiteKey) -> None:
        self.site_combo.clear()
        for k in self.plate.sites_of(key.well, key.plate):
            self.site_combo.addItem(f"{k.site}", k.site)
        self.site_combo.setCurrentIndex(max(0, self.site_combo.findData(key.site)))

    def _site_chosen(self, index: int) -> None:
        if self.current_key is not None and index >= 0:
            self.show_well(self.current_key.plate, self.current_key.well, self.site_combo.itemData(index))

    def _mosaic_toggled(self, _on: bool) -> None:
        self._update_controls()
        if self.current_key is not None:
            self.show_key(self.current_key)

    def next_well(self) -> str | None:
        return self.grid.step("next") if self.plate is not None else None

    def previous_well(self) -> str | None:
        return self.grid.step("prev") if self.plate is not None else None

    # --- wells to label next -------------------------------------------------------------------
    def suggest_wells(self, n: int | None = None):
        """Rank the unlabelled wells with the session's model in the background; the session holds the
        result (outlined on the map). Returns the job, or None when it cannot start (a notification says why)."""
        plate, model = self.plate, self.session.prediction_model  # the model Apply predicts with
        if self.suggest_job is not None:
            notifications.show_info("wells are being ranked already: wait for it, or click Stop suggesting")
            return None
        if plate is None:
            notifications.show_warning(NO_PLATE)
            return None
        if model is None:
            notifications.show_warning("no model yet: train one in the Train dock, run Explain per phenotype or load "
                                       "a model file in Apply; its uncertainty picks the wells to label")
            return None
        labels = dict(self.session.labels)
        try:
            model.channel_order(plate.channels)
            if not candidate_wells(plate, labels):
                raise DcmixError("every well with images is labelled already, so there is nothing to suggest")
        except DcmixError as err:
            notifications.show_error(str(err))
            return None
        n = int(n or self.suggest_panel.count.value())
        self._suggest_run = (model, plate, None)
        self.suggest_panel.set_running(True)
        self.suggest_job = self.run(suggestion_updates, model, plate, labels, n, "auto", TORCH_THREADS,
                                    on_yield=self._on_suggest_event, on_finish=self._suggest_finished,
                                    progress="Ranking wells to label")
        return self.suggest_job

    def stop_suggesting(self) -> None:
        if self.suggest_job is not None:
            self.suggest_job.cancel()

    def _on_suggest_event(self, event) -> None:
        if event.kind == "done":
            self._suggest_run = self._suggest_run[:2] + (event.result,)
        else:
            self.suggest_panel.status.setText(event.message)
        if self.suggest_job is not None:  # last: napari's bar runs processEvents, later events may run inside it
            self.suggest_job.advance_to(event.done, event.total)

    def _suggest_finished(self) -> None:
        job, self.suggest_job = self.suggest_job, None
        (model, plate, result), self._suggest_run = self._suggest_run, ()
        self.suggest_panel.set_running(False)
        if job is None or job.failed is not None:
            return  # the failure was a notification
        if result is None:
            self.suggest_panel.status.setText("stopped: no wells were suggested")
        elif model is not self.session.prediction_model or plate is not self.plate:
            self.suggest_panel.status.setText("the model or the plate changed while the wells were ranked; "
                                              "click Suggest again")
        else:
            self.session.set_suggestions(result, model)
            for warning in (result.warning, self._skipped_text(result.skipped)):
                if warning:
                    notifications.show_warning(warning)

    @staticmethod
    def _skipped_text(skipped) -> str | None:
        if not skipped:
            return None
        names = ", ".join(w for _, w in skipped[:10]) + (" …" if len(skipped) > 10 else "")
        return (f"{len(skipped)} unlabelled well(s) have no readable site and were not ranked: {names}; "
                "see Problems in the plate browser")

    def _show_suggestions(self, *_) -> None:
        suggestions = self.session.suggestions
        items = suggestions.items if suggestions is not None else ()
        self.grid.set_suggestions({s.well: (s.rank, s.reason) for s in items if s.plate == self.plate_id})

    def step_suggestion(self, direction: str = "next") -> str | None:
        """Show the next (or previous) suggested well, selected for labelling; its well id."""
        suggestions = self.session.suggestions
        if not suggestions:
            notifications.show_info("no wells suggested: click 'Suggest wells to label' in the plate browser")
            return None
        key = self.current_key
        plate_id, well = step_in_order((key.plate, key.well) if key else None, direction, suggestions.wells())
        if not self.show_well(plate_id, well):
            return None
        self.grid.anchor = well
        self.grid.set_selection([well])
        return well

    def next_suggestion(self) -> str | None:
        return self.step_suggestion("next")

    def previous_suggestion(self) -> str | None:
        return self.step_suggestion("prev")

    # --- labels -------------------------------------------------------------------------------
    def load_labels(self, path, column: str | None = None) -> bool:
        """Read a labels CSV for the open plate and publish it (PlateError -> notification). The form
        shows it from ``labels_changed``; one not loaded (no plate, unreadable) is shown here, to pick a column."""
        loaded = self.plate is not None and load_labels_into(self.session, path, column)
        if not loaded:
            self.open_panel.set_csv(str(path), column)
        return loaded

    def _column_changed(self, column: str) -> None:
        if self.plate is not None and self.open_panel.csv_path:
            self.load_labels(self.open_panel.csv_path, column or None)

    def save_labels(self, path=None) -> Path | None:
        return self.label_panel.save(path)

    def _refresh_labels(self, *_) -> None:
        labels = self.session.book.plate_labels(self.plate_id)
        self.grid.set_labels(labels, self.label_panel.colors())
        self.conditions.show_plate(self.plate_id)

    def selection(self) -> tuple[str, list[str]]:
        """(plate id, selected wells) of the plate map."""
        return self.plate_id, self.grid.selected()

    def _selection_changed(self, wells: list) -> None:
        n = len(wells)
        self.label_panel.status.setText(f"{n} well{'s' if n != 1 else ''} selected" if n else
                                        "Select wells on the plate map, pick a class, then Assign.")

    # --- session and viewer events ------------------------------------------------------------
    def _on_predictions(self, *_) -> None:
        preds = {w: p for (pid, w), p in self.session.predictions.items() if pid == self.plate_id}
        first = preds and not self.grid.predictions
        self.grid.set_predictions(preds)
        self._refresh_labels()
        self._update_controls()
        if first:
            self.color_combo.setCurrentText("predictions")

    def _on_session_plate(self, plate) -> None:
        if plate is None:
            return
        self._show_new_plate(plate, self.session.pattern)
        if not self._opening:  # published by someone else: no first well to show before reading in the background
            self.background.start(plate)

    def _on_session_site(self, key) -> None:
        """A site was shown (by this dock or another): mark it on the plate map."""
        if key is None or self.plate is None or not self.plate.sites_of(key.well, key.plate):
            return
        if key.plate == self.plate_id:
            self.grid.set_current(key.well)
        self._fill_sites(key)

    def _is_open(self, root) -> bool:
        return self.plate is not None and self.plate.location.same_as(root)

    def _on_layer_inserted(self, event) -> None:
        self._maybe_follow(event.value)

    def _maybe_follow(self, layer) -> None:
        meta = plate_metadata(layer)
        if meta is not None and not self._is_open(meta["plate"]):
            if self._pending_follow is None:
                self._pending_follow = meta
                QTimer.singleShot(0, self._follow_pending)

    def _follow_existing_layers(self) -> None:
        for layer in self.viewer.layers:
            self._maybe_follow(layer)

    def _follow_pending(self) -> None:
        """A reader opened a plate the dock does not show: open it too (with the index the reader
        built, if it still holds it) and mark the shown site."""
        meta, self._pending_follow = self._pending_follow, None
        if meta is None or self._is_open(meta["plate"]):
            return
        indexed = take_opened_plate(meta["plate"], meta.get("pattern"))
        if self.open_plate(meta["plate"], meta.get("pattern"), show_first=False, indexed=indexed) is None:
            return
        try:
            key = SiteKey(*meta["site"])
        except (TypeError, ValueError, KeyError):
            return
        if self.plate.sites_of(key.well, key.plate):
            self.show_key(key)


def _read_sites(plate: Plate, keys: list[SiteKey]) -> int:
    """Worker body: read ``keys`` into the plate's cache (each site's chunks are fetched concurrently)."""
    for key in keys:
        plate.read_site(key)
    return len(keys)


def plate_browser_of(viewer) -> PlateBrowserWidget:
    """The viewer's Plate browser: the one docked already, else one added from the Plugins menu's entry."""
    from ..session import real_viewer

    viewer = real_viewer(viewer)
    for widget in viewer.window.dock_widgets.values():
        if isinstance(widget, PlateBrowserWidget):
            return widget
    _, widget = viewer.window.add_plugin_dock_widget("napari-dcmix", "Plate browser")
    return widget


class OpenPlateUrl(OpenUrlForm):
    """Plugins › napari-dcmix › Open plate URL…: the form that hands a URL to this viewer's Plate browser
    (a class: napari finds the ``napari_viewer`` parameter on ``__init__``)."""

    def __init__(self, napari_viewer):
        super().__init__(napari_viewer, partial(plate_browser_of, napari_viewer))
