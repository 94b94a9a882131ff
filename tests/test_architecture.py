"""The shape of the package, checked on its source: a folder per dock, no Qt in the core, typed events
only, α read in two places, the session written on the GUI thread only, module-level state by design.

A newcomer reads the tree to find a dock; these tests keep that true as the code grows.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import threading
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "napari_dcmix"
WIDGETS = PACKAGE / "widgets"
DOCK_FOLDERS = {"plate_browser", "train", "explain", "importance", "apply"}
#: the core: everything the CLI reaches; no Qt, no napari
CORE = ("plate", "model", "training", "figures", "classical", "_io.py", "errors.py", "colors.py", "cli.py", "cli_parser.py",
        "cli_checks.py", "report.py")
GUI_MODULES = ("qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "napari", "magicgui", "superqt")


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _files(*parts: str) -> list[Path]:
    found = []
    for part in parts:
        path = PACKAGE / part
        found += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return found


def _relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix() if path.is_relative_to(PACKAGE) else path.name


# --- the tree ---------------------------------------------------------------------------------------
def test_the_widget_folders_are_the_docks():
    folders = {p.name for p in WIDGETS.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == DOCK_FOLDERS, "widgets/ holds one folder per dock (and the shared base beside them)"
    for folder in DOCK_FOLDERS:
        tree = _parse(WIDGETS / folder / "dock.py")
        docks = [n.name for n in tree.body if isinstance(n, ast.ClassDef)
                 and any(getattr(b, "id", None) == "DcmixDock" for b in n.bases)]
        assert len(docks) == 1, f"widgets/{folder}/dock.py defines the dock (one DcmixDock subclass): {docks}"


def test_the_manifest_names_each_dock_in_its_folder():
    import yaml

    manifest = yaml.safe_load((PACKAGE.parents[1] / "napari.yaml").read_text())
    commands = {c["id"]: c["python_name"] for c in manifest["contributions"]["commands"]}
    docks = {commands[w["command"]] for w in manifest["contributions"]["widgets"]}
    assert {name.split(":")[0] for name in docks} == {f"napari_dcmix.widgets.{f}.dock" for f in DOCK_FOLDERS}


def test_the_core_imports_no_qt_and_no_napari_in_its_source():
    found = []
    for path in _files(*CORE):
        for node in ast.walk(_parse(path)):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            found += [f"{_relative(path)}: {n}" for n in names if n.split(".")[0] in GUI_MODULES]
    assert not found, "the core must run headless (CLI, cluster): " + ", ".join(found)


def test_importing_the_core_loads_no_qt():
    modules = ["napari_dcmix." + (p[:-3] if p.endswith(".py") else p) for p in CORE]
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules) +
            f"print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in {GUI_MODULES!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip() == ""


# --- typed events -----------------------------------------------------------------------------------
def _untyped_signals(path: Path) -> list[str]:
    """``Signal(object)`` (Qt or psygnal) in ``path``: an event whose payload says nothing of its type."""
    found = []
    for node in ast.walk(_parse(path)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "Signal":
            if any(isinstance(a, ast.Name) and a.id == "object" for a in node.args):
                found.append(f"{_relative(path)}:{node.lineno}")
    return found


def test_no_signal_carries_an_untyped_object():
    offenders = [line for path in _files("widgets", ".") for line in _untyped_signals(path)]
    assert not offenders, "declare each event's payload type (no Signal(object)): " + ", ".join(offenders)


def test_the_signal_check_catches_one(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from qtpy.QtCore import Signal\nclass A:\n    changed = Signal(object)\n    ok = Signal(str)\n")
    assert len(_untyped_signals(bad)) == 1


# --- α is read in two places ------------------------------------------------------------------------
#: calls that read α off a model, allowed only where α is made (model/) and in the snapshot
ALPHA_FROM_MODEL = {"alpha", "alpha_matrix", "phenotype_alpha"}
#: a snapshot's numbers, read in the widgets only by the chart that turns them into bars
SNAPSHOT_NUMBERS = {"alpha", "importance", "history"}


def _attribute_uses(path: Path, names: set[str], calls: bool) -> list[str]:
    found = []
    for node in ast.walk(_parse(path)):
        if isinstance(node, ast.Call) == calls and isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in names:
                found.append(f"{_relative(path)}:{node.lineno} .{func.attr}()")
        elif not calls and isinstance(node, ast.Attribute) and node.attr in names and isinstance(node.ctx, ast.Load):
            if ast.unparse(node.value).endswith(("session", "session()", "events")):
                continue  # the session's field and event named importance: the snapshot itself, passed on
            found.append(f"{_relative(path)}:{node.lineno} .{node.attr}")
    return found


def test_alpha_is_read_off_a_model_only_by_the_snapshot():
    allowed = {"training/snapshot.py", "training/trained.py"}  # TrainedModel.alpha_matrix wraps the mixing layer
    readers = [use for path in _files(".") if not _relative(path).startswith("model/")
               and _relative(path) not in allowed for use in _attribute_uses(path, ALPHA_FROM_MODEL, calls=True)]
    assert not readers, "read α through ImportanceSnapshot (of_model, live, of_row): " + ", ".join(readers)


def test_in_the_widgets_only_the_chart_reads_a_snapshot_s_numbers():
    chart = WIDGETS / "importance" / "bars.py"
    readers = [use for path in _files("widgets") if path != chart
               for use in _attribute_uses(path, SNAPSHOT_NUMBERS, calls=False)]
    assert not readers, ("docks pass the snapshot on; the chart (importance/bars.py) draws its numbers and its "
                         "own methods give texts, CSV rows and the blend: " + ", ".join(readers))
    assert _attribute_uses(chart, SNAPSHOT_NUMBERS, calls=False), "the check must see the chart's reads"


# --- the session ------------------------------------------------------------------------------------
def test_the_session_fields_are_read_only():
    from napari_dcmix.widgets.session import DcmixSession

    session = DcmixSession()
    for name in ("plate", "site", "stats", "labels", "labels_file", "model", "importance", "predictions", "running"):
        with pytest.raises(AttributeError):
            setattr(session, name, None)
    with pytest.raises(TypeError):
        session.predictions[("P", "A01")] = {}  # read-only views: edits go through the methods and their events


def test_a_worker_thread_cannot_write_the_session():
    from napari_dcmix.widgets.session import DcmixSession, SessionThreadError

    session = DcmixSession()
    seen, errors = [], []
    session.events.site.connect(seen.append)

    def worker():
        try:
            session.set_site(None)
        except SessionThreadError as err:
            errors.append(str(err))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(10)
    assert errors and "worker thread" in errors[0] and seen == []  # refused before any listener ran
    session.set_site(None)  # the thread that made it (the GUI thread) may
    assert seen == [None]


def test_opening_a_plate_is_one_event_with_everything_in_place(tmp_path):
    from conftest import write_imagexpress
    from napari_dcmix.plate import open_plate, read_labels
    from napari_dcmix.widgets.session import DcmixSession

    root = write_imagexpress(tmp_path / "plate")
    (tmp_path / "l.csv").write_text("well,label\nB02,a\nB03,b\n")
    plate = open_plate(root)
    session = DcmixSession()
    session.set_predictions({("Plate1", "B02"): {"prediction": "x"}})
    session.set_site(plate.sites[0])
    events, seen = [], []
    for name in session.events.signals:
        getattr(session.events, name).connect(lambda *args, name=name: events.append(name))
    session.events.plate.connect(lambda p: seen.append((dict(session.labels), session.site, dict(session.predictions))))
    session.open_plate(plate, None, read_labels(tmp_path / "l.csv", plate.sites), tmp_path / "l.csv")
    assert events == ["plate"]  # one event; site, labels, predictions were reset before it
    assert seen == [({("Plate1", "B02"): "a", ("Plate1", "B03"): "b"}, None, {})]


# --- module-level state -----------------------------------------------------------------------------
#: the module-level state that must outlive a call by design, each documented where it is defined
BY_DESIGN = {
    "_io.py": {"_PLATE_ROOTS"},                      # plate folders never written into, for the whole process
    "_reader.py": {"_opened"},                       # File > Open's index handed to the plate browser, once
    "demo.py": {"DOCK_WRAPPERS"},                    # weak: napari's dock wrappers of the demo's docks
    "training/jobs.py": {"_warm_up_started"},        # torch's first-use imports, once per process
    "training/stopping.py": {"_STOP", "_STEPPED"},   # SIGTERM's stop request: a signal handler's only way in
    "widgets/composite.py": {"_LIVE"},               # weak: the composite's live updates of each session
    "widgets/jobs.py": {"_ACTIVE", "_atexit_registered"},  # the jobs interpreter exit waits for
    "widgets/session.py": {"_SESSIONS"},             # weak: the session of each viewer
    "widgets/train/model_files.py": {"_last_save_folder"},  # the folder a model was last saved to
}
_MUTATORS = {"add", "append", "update", "pop", "clear", "discard", "setdefault", "remove", "extend", "insert"}


def module_state(path: Path) -> set[str]:
    """Module-level names that change at run time: rebound through ``global``, or containers whose
    contents are changed (``X[k] = v``, ``X.add(…)``…)."""
    tree = _parse(path)
    top = {t.id for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
           for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)}
    changed = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            changed |= set(node.names)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _MUTATORS:
            if isinstance(node.func.value, ast.Name):
                changed.add(node.func.value.id)
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            changed |= {t.value.id for t in targets if isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name)}
    return changed & top


def test_module_level_state_is_only_what_must_be_and_is_documented():
    found = {}
    for path in _files("."):
        names = module_state(path)
        if names:
            found[_relative(path)] = names
    assert found == BY_DESIGN, ("module-level state that changes at run time outlives the viewer that made it: "
                                "keep it on the session or the dock, or document why it must be here")
    for rel, names in BY_DESIGN.items():
        lines = (PACKAGE / rel).read_text(encoding="utf-8").splitlines()
        for name in names:
            at = next(i for i, line in enumerate(lines) if line.startswith((f"{name} =", f"{name}:")))
            assert "#" in lines[at] or lines[at - 1].lstrip().startswith("#"), f"{rel}: say why {name} is module state"


def test_the_state_check_sees_a_registry(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("CACHE = {}\nLIMIT = {'a': 1}\ndef f(k, v):\n    CACHE[k] = v\n")
    assert module_state(bad) == {"CACHE"}
