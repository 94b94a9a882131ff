"""The settings forms: magicgui widgets made from a settings dataclass's field spec (training/config.py).

Each field's widget comes from magicgui's ``create_widget`` (int -> SpinBox, float -> FloatSpinBox,
choices -> ComboBox), its default, bounds, step, choices and help passed as magicgui widget options.
The basic fields sit in a magicgui ``Container``; the advanced ones in a second one inside a
collapsed "Advanced" section, so the dock stays compact. The CLI's flags come from the same spec.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable

from magicgui.types import Undefined
from magicgui.widgets import Container, FloatSpinBox, Label, create_widget
from qtpy.QtWidgets import QVBoxLayout, QWidget
from superqt import QCollapsible

from ..training.config import ADVANCED, BASIC, ConfigField, TrainConfig, config_fields


class DecimalSpinBox(FloatSpinBox):
    """magicgui's FloatSpinBox with a ``decimals`` option, which magicgui lacks.

    Qt rounds the range and the value to the decimals, so they are set first: decimals, step, range,
    value (a learning rate of 3e-3 at Qt's default 2 decimals would read 0).
    """

    def __init__(self, value=Undefined, *, decimals: int, min=Undefined, max=Undefined, step=Undefined,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.native.setDecimals(decimals)
        if step is not Undefined:
            self.step = step
        self.range = (self.min if min is Undefined else min, self.max if max is Undefined else max)
        if value is not Undefined and value is not None:
            self.value = value


def widget_options(spec: ConfigField) -> dict:
    """The magicgui widget options of one field: its bounds, step, choices and help."""
    options: dict = {"tooltip": spec.help}
    if spec.choices:
        return {**options, "choices": list(spec.choices)}  # -> ComboBox
    if spec.type is int:
        options["step"] = int(spec.step or 1)
    elif spec.type is float:
        options["step"] = spec.step  # None: adaptive
        if spec.decimals is not None:
            options.update(widget_type=DecimalSpinBox, decimals=spec.decimals)
    else:
        raise TypeError(f"no form widget for {spec.name} ({spec.type.__name__})")
    options.update({bound: spec.type(value) for bound, value in (("min", spec.min), ("max", spec.max))
                    if value is not None})
    return options


def make_widget(spec: ConfigField):
    """The magicgui widget of one field, at its default, with its bounds, choices and help."""
    return create_widget(value=spec.default, annotation=spec.type, name=spec.name, label=spec.label,
                         options=widget_options(spec))


class ConfigForm:
    """Widgets for the form fields of a settings dataclass (``of``: TrainConfig by default, or e.g.
    ExplainConfig); ``config(base)`` reads them back.

    ``notes`` puts a live text beside a field (``{"device": device_text}``: what "auto" means here);
    ``form["steps"]`` is the magicgui widget of a field (``.value`` reads and sets it).
    """

    def __init__(self, names: Iterable[str] | None = None, notes: dict[str, Callable[[object], str]] | None = None,
                 advanced_title: str = "Advanced", of: type = TrainConfig):
        notes, self.of = notes or {}, of
        specs = [f for f in config_fields((BASIC, ADVANCED), of=of) if names is None or f.name in set(names)]
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

    def config(self, base=None, **extra):
        """``base`` (what the form does not set; ``of()`` by default) with the form's values and ``extra``
        on top."""
        return dataclasses.replace(base if base is not None else self.of(), **{**self.values(), **extra})

    def set_values(self, **values) -> None:
        for name, value in values.items():
            self.widgets[name].value = value

    def load(self, config) -> None:
        """Show ``config``'s values in the form."""
        self.set_values(**{name: getattr(config, name) for name in self.widgets})

    @property
    def enabled(self) -> bool:
        return self.basic.enabled

    @enabled.setter
    def enabled(self, flag: bool) -> None:
        """Lock every field (training runs); the Advanced section still opens, to read its values."""
        self.basic.enabled = self.advanced.enabled = bool(flag)
