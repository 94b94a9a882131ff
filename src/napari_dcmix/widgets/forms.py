"""The training settings form: magicgui widgets made from TrainConfig's field spec (training/config.py).

The basic fields sit in a magicgui ``Container``; the advanced ones in a second one inside a
collapsed "Advanced" section, so the dock stays compact. The CLI's flags come from the same spec.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable

from magicgui.widgets import ComboBox, Container, FloatSpinBox, Label, SpinBox
from qtpy.QtWidgets import QVBoxLayout, QWidget
from superqt import QCollapsible

from ..training.config import ADVANCED, BASIC, ConfigField, TrainConfig, config_fields


def make_widget(spec: ConfigField):
    """The magicgui widget of one field, at its default, with its bounds, choices and help."""
    common = dict(name=spec.name, label=spec.label, tooltip=spec.help)
    if spec.choices:
        return ComboBox(choices=list(spec.choices), value=spec.default, **common)
    if spec.type is int:
        return SpinBox(value=spec.default, min=int(spec.min), max=int(spec.max), step=int(spec.step or 1), **common)
    if spec.type is float:
        box = FloatSpinBox(**common)
        if spec.decimals is not None:  # before range and value, which Qt rounds to the decimals
            box.native.setDecimals(spec.decimals)
        box.step = spec.step
        box.range = (spec.min, spec.max)
        box.value = spec.default
        return box
    raise TypeError(f"no form widget for {spec.name} ({spec.type.__name__})")


class ConfigForm:
    """Widgets for the form fields of TrainConfig; ``config(base)`` reads them back.

    ``notes`` puts a live text beside a field (``{"device": device_text}``: what "auto" means here);
    ``form["steps"]`` is the magicgui widget of a field (``.value`` reads and sets it).
    """

    def __init__(self, names: Iterable[str] | None = None, notes: dict[str, Callable[[object], str]] | None = None,
                 advanced_title: str = "Advanced"):
        notes = notes or {}
        specs = [f for f in config_fields((BASIC, ADVANCED)) if names is None or f.name in set(names)]
        self.widgets = {spec.name: make_widget(spec) for spec in specs}
        self.notes: dict[str, Label] = {}
        rows: dict[str, list] = {BASIC: [], ADVANCED: []}
        for spec in specs:
            widget = self.widgets[spec.name]
            if spec.name in notes:
                note, describe = Label(), notes[spec.name]
                note.value = describe(widget.value)
                widget.changed.connect(lambda value, note=note, describe=describe: setattr(note, "value", describe(value)))
                row = Container(name=f"{spec.name}_row", label=spec.label, layout="horizontal", labels=False,
                                widgets=[widget, note])
                row.margins = (0, 0, 0, 0)
                self.notes[spec.name] = note
                widget = row
            rows[spec.where].append(widget)
        self.basic = Container(widgets=rows[BASIC])
        self.advanced = Container(widgets=rows[ADVANCED])
        self.native = QWidget()
        layout = QVBoxLayout(self.native)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.basic.native)
        self.collapsible = QCollapsible(advanced_title)
        self.collapsible.addWidget(self.advanced.native)
        self.collapsible.setVisible(bool(rows[ADVANCED]))
        layout.addWidget(self.collapsible)

    def __getitem__(self, name: str):
        return self.widgets[name]

    def values(self) -> dict:
        return {name: widget.value for name, widget in self.widgets.items()}

    def config(self, base: TrainConfig | None = None, **extra) -> TrainConfig:
        """``base`` (what the form does not set) with the form's values and ``extra`` on top."""
        return dataclasses.replace(base or TrainConfig(), **{**self.values(), **extra})

    def set_values(self, **values) -> None:
        for name, value in values.items():
            self.widgets[name].value = value

    def load(self, config: TrainConfig) -> None:
        """Show ``config``'s values in the form."""
        self.set_values(**{name: getattr(config, name) for name in self.widgets})

    @property
    def enabled(self) -> bool:
        return self.basic.enabled

    @enabled.setter
    def enabled(self, flag: bool) -> None:
        """Lock every field (training runs); the Advanced section still opens, to read its values."""
        self.basic.enabled = self.advanced.enabled = bool(flag)
