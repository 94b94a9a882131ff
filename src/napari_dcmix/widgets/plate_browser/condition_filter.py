"""The plate browser's condition filter: select the wells whose conditions match (``compound=DMSO,
dose>=1``), and feed the conditions to the plate map's tooltips. Logic lives in plate.conditions."""

from __future__ import annotations

from napari.utils import notifications
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QHBoxLayout, QLineEdit, QPushButton, QWidget

from ...errors import DcmixError
from ...plate.conditions import Conditions, read_conditions, select_wells

FILTER_HELP = ("Select the wells whose conditions (the labels CSV's other columns) match, e.g.\n"
               "compound=DMSO · dose>=1 · well_type!=treatment · compound~tax (contains);\n"
               "separate clauses with commas (all must hold). Hover a well to read its conditions.")


class ConditionFilter(QWidget):
    """The CSV's condition columns: per-well conditions for the plate map (``conditions_shown``) and a
    filter that selects matching wells (``wells_matched``); the plate browser passes both to its map."""

    conditions_shown = Signal(dict)   # well -> {column: value} of the plate shown
    wells_matched = Signal(list)      # wells to select on the plate map

    def __init__(self, session):
        super().__init__()
        self.session = session
        self.plate_id = ""
        self.conditions: Conditions | None = None
        self._plate = None  # the plate the conditions belong to: another plate drops them
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.edit = QLineEdit(placeholderText="select wells where… e.g. compound=DMSO, dose>=1", toolTip=FILTER_HELP)
        self.edit.returnPressed.connect(self.apply)
        self.button = QPushButton("Select", toolTip=FILTER_HELP)
        self.button.clicked.connect(self.apply)
        row.addWidget(self.edit, 1)
        row.addWidget(self.button)

    def load(self, path, plate, label_column: str | None) -> None:
        """Read the condition columns of the labels CSV just loaded for ``plate``."""
        try:
            self.conditions, self._plate = read_conditions(path, plate.sites, label_column), plate
        except DcmixError as err:  # the labels loaded: the conditions are a bonus, say why they are missing
            self.conditions, self._plate = None, None
            notifications.show_warning(f"conditions not loaded: {err}")
        self.show_plate(self.plate_id)

    def show_plate(self, plate_id: str) -> None:
        """The conditions of ``plate_id`` (none if they belong to another plate than the session's)."""
        self.plate_id = plate_id
        if self.conditions is not None and self.session.plate is not self._plate:
            self.conditions, self._plate = None, None
        self.conditions_shown.emit(self.conditions.for_plate(plate_id) if self.conditions else {})
        columns = self.conditions.columns if self.conditions else []
        self.edit.setEnabled(bool(columns))
        self.button.setEnabled(bool(columns))
        self.edit.setToolTip(FILTER_HELP + (f"\nColumns: {', '.join(columns)}" if columns else
                                            "\nLoad a labels CSV with columns such as compound or dose."))

    def apply(self) -> list[str]:
        """Select the matching wells on the plate map (PlateError -> notification)."""
        if self.conditions is None or not self.edit.text().strip():
            return []
        try:
            wells = select_wells(self.conditions, self.edit.text(), self.plate_id)
        except DcmixError as err:
            notifications.show_error(str(err))
            return []
        self.wells_matched.emit(wells)
        if not wells:
            notifications.show_info(f"no well matches '{self.edit.text().strip()}'")
        return wells
