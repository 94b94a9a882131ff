"""Every function of the package is at most MAX_LINES long (its docstring included), read off the
source with ast, not by importing it: a longer one has more than one reason to change; split it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "napari_dcmix"
MAX_LINES = 80
#: Folders of the package (relative to it) not checked; none: every function of the package is checked.
EXCLUDED: tuple[str, ...] = ()


def _checked_files() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py"))
            if not any(p.relative_to(PACKAGE).parts[:len(Path(e).parts)] == Path(e).parts for e in EXCLUDED)]


def long_functions(path: Path, limit: int = MAX_LINES) -> list[str]:
    """``file:line name (n lines)`` for each function or method in ``path`` longer than ``limit``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines = node.end_lineno - node.lineno + 1
            if lines > limit:
                shown = path.relative_to(PACKAGE.parent) if path.is_relative_to(PACKAGE.parent) else path
                found.append(f"{shown}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_the_check_sees_the_package():
    files = _checked_files()
    assert PACKAGE / "cli.py" in files and PACKAGE / "training" / "trainer.py" in files
    assert PACKAGE / "widgets" / "plate_browser" / "dock.py" in files
    for folder in EXCLUDED:
        assert (PACKAGE / folder).is_dir(), f"EXCLUDED names {folder!r}, which is not a folder of the package"
        assert not any(p.is_relative_to(PACKAGE / folder) for p in files)


def test_the_check_counts_the_docstring(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES - 3))
    ok = tmp_path / "ok.py"
    ok.write_text(f'def f():\n    """Doc."""\n{body}\n    return 0\n')
    assert long_functions(ok, MAX_LINES) == []
    over = tmp_path / "over.py"
    over.write_text(f'def f():\n    """Doc.\n\n    More.\n    """\n{body}\n    return 0\n')
    assert long_functions(over, MAX_LINES + 3) == [] and len(long_functions(over, MAX_LINES)) == 1


def test_no_function_is_longer_than_the_limit():
    offenders = [line for path in _checked_files() for line in long_functions(path)]
    assert not offenders, (f"{len(offenders)} function(s) longer than {MAX_LINES} lines (docstring included); "
                           "split each into helpers with one reason each:\n  " + "\n  ".join(offenders))
