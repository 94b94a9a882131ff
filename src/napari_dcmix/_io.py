"""Atomic file writes: a crash or a full disk never leaves a half-written model or CSV behind.

Also the one output guard: image folders are read-only for napari-dcmix. Every plate opened in this
process registers its folder, and every writer (models, predictions, labels, figures, matrices, from
the CLI or a dock) goes through :func:`atomic_write`, which refuses a path inside one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator

from .errors import DcmixError

# every plate folder opened in this process: nothing may be written inside one (by design for the whole
# process: a folder opened in a closed viewer is still somebody's images)
_PLATE_ROOTS: set[Path] = set()


def _folders(plates) -> set[Path]:
    """The local folders (resolved) of plate folders or locations; a plate at a URL has none."""
    from .plate.location import PlateLocation

    found = set()
    for plate in plates:
        location = PlateLocation.of(plate)
        if location.folder is not None:
            found.add(location.folder.resolve())
    return found


def protect_plate_folder(root) -> None:
    """Register a plate folder (a path or a ``PlateLocation``): nothing may be written inside it from
    now on. A plate at a URL is never written to anyway: outputs are local files (:func:`check_not_in_plate`)."""
    _PLATE_ROOTS.update(_folders([root]))


def check_not_in_plate(path: str | os.PathLike, plate_roots=()) -> Path:
    """``path`` resolved; DcmixError if it is a URL (outputs are files on this computer) or lies inside
    a plate folder (registered, or given as paths or ``PlateLocation``s)."""
    from .plate.location import is_url

    if is_url(path):
        raise DcmixError(f"{path} is a URL: napari-dcmix writes its outputs to files on this computer, never to "
                         "a server; choose a local path (for a plate on a server: a folder like <plate>-dcmix)")
    out = Path(path).expanduser().resolve()
    for root in _folders(plate_roots) | _PLATE_ROOTS:
        if out == root or root in out.parents:
            raise DcmixError(f"{out} is inside the plate folder {root}; napari-dcmix never writes into image "
                             f"folders, choose a place outside it (for example {root.parent / (root.name + '-dcmix')})")
    return out


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file: equal once resolved, or (both existing) one inode, so a hard
    link or a symlink to an input counts too."""
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    if pa.resolve() == pb.resolve():
        return True
    try:
        return pa.exists() and pb.exists() and os.path.samefile(pa, pb)
    except OSError:
        return False


def check_not_an_input(path: str | os.PathLike, inputs: dict[str, str | os.PathLike | None], what: str = "output") -> Path:
    """``path`` resolved; DcmixError if it is one of the command's own inputs (``{"the model file given
    as MODEL": path, …}``; None values are skipped): writing there would destroy what was read."""
    out = Path(path).expanduser().resolve()
    for name, given in inputs.items():
        if given is not None and str(given) != "" and same_file(out, given):
            raise DcmixError(f"{what} path {out} is {name}; it would be overwritten — choose another file name")
    return out


def check_distinct_outputs(outputs: dict[str, str | os.PathLike | None]) -> None:
    """DcmixError if two outputs of one command name the same file (the second would replace the first)."""
    seen: dict[str, str | os.PathLike] = {}
    for name, path in outputs.items():
        if path is None or str(path) == "":
            continue
        for other, earlier in seen.items():
            if same_file(path, earlier):
                raise DcmixError(f"{name} and {other} are both {Path(path).expanduser().resolve()}; one would "
                                 "overwrite the other — give each output its own file name")
        seen[name] = path


def output_problem(path: str | os.PathLike, plate_roots=(), inputs: dict | None = None, what: str = "output") -> str | None:
    """Why nothing may be written to ``path`` (what the docks show before a file dialog's path is
    used), or None: the same rules and messages as :func:`check_not_in_plate` and
    :func:`check_not_an_input` (``inputs``: what the dock has loaded, by a name the user knows)."""
    try:
        check_not_in_plate(path, [r for r in plate_roots if r is not None])
        check_not_an_input(path, inputs or {}, what)
    except DcmixError as err:
        return str(err)
    return None


def is_inside(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """Whether ``path`` is ``folder`` or lies below it (both resolved)."""
    try:
        Path(path).expanduser().resolve().relative_to(Path(folder).expanduser().resolve())
        return True
    except (ValueError, OSError):
        return False


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", *, into_plate: bool = False, **open_kwargs) -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it over ``path`` only if the block succeeds.

    A failed write anywhere (a full disk, an I/O error, the rename itself) leaves ``path`` as it was
    (absent, or the previous file byte for byte), removes the temporary file and raises one
    :class:`DcmixError` naming the path and the reason. ``into_plate`` is for the sample-plate
    generator alone, which writes its own plate folder.
    """
    if not into_plate:
        check_not_in_plate(path)
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise DcmixError(f"cannot write {path}: folder {parent} does not exist; create it or choose another path")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    except OSError as err:
        raise write_failure(path, err) from None
    watched: _WatchedFile | None = None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files: colleagues must read models too
        if "b" not in mode:
            open_kwargs.setdefault("encoding", "utf-8")
            open_kwargs.setdefault("newline", "" if path.suffix == ".csv" else None)
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            watched = _WatchedFile(handle)
            yield watched
            watched.check()
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        failure = err if isinstance(err, OSError) else watched.failure if watched is not None else None
        if failure is not None and isinstance(err, Exception):  # a full disk or a lost mount while writing: one clear line, no traceback
            raise write_failure(path, failure) from None
        raise


class _WatchedFile:
    """The open temporary file, remembering the first OSError one of its writes raised: a library that
    catches it and raises its own error instead (torch.save reports a full disk as a RuntimeError
    about a file position), or goes on as if nothing happened, still fails as a write, and nothing is
    renamed over the output."""

    def __init__(self, handle: IO):
        self._handle = handle
        self.failure: OSError | None = None

    def write(self, data):
        try:
            return self._handle.write(data)
        except OSError as err:
            self.failure = self.failure or err
            raise

    def check(self) -> None:
        if self.failure is not None:
            raise self.failure

    def __getattr__(self, name: str):
        return getattr(self._handle, name)


def write_failure(path: str | os.PathLike, err: OSError) -> DcmixError:
    """The one error of a failed write: the path, the system's reason, and what to do about it."""
    reason = err.strerror or str(err) or type(err).__name__
    if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        fix = "free some space or choose another folder"
    elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "choose a folder you can write to"
    else:  # EIO, a network drive gone: the disk, not the file
        fix = "check the disk or network drive, or choose another folder"
    return DcmixError(f"cannot write {path}: {reason}; nothing was written there (an earlier file of that name is "
                      f"unchanged), {fix}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike, text: str, *, into_plate: bool = False) -> None:
    with atomic_write(path, "w", into_plate=into_plate) as handle:
        handle.write(text)


# --- where the docks propose to save (never inside the plate folder) ---------------------------------
def remote_output_folder(plate) -> Path | None:
    """For a plate at a URL (a ``PlateLocation`` or a URL), its local output folder
    (``<working folder>/<plate>-dcmix``), created when first proposed; None for a plate folder."""
    from .plate.location import PlateLocation

    if plate is None or not PlateLocation.of(plate).is_remote:
        return None
    folder = PlateLocation.of(plate).output_folder()
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def _plate_name(plate, default: str) -> str:
    from .plate.location import PlateLocation

    return (PlateLocation.of(plate).name or default) if plate is not None else default


def default_export_path(plate_root, name: str) -> Path:
    """Where an export (chart, matrix, predictions, figure) is proposed: beside the plate folder (never
    inside it), into the output folder of a plate at a URL, else the home folder; ``name`` may use
    ``{plate}`` for the plate's name. ``plate_root``: its folder, ``PlateLocation`` or None."""
    name = name.format(plate=_plate_name(plate_root, "plate"))
    remote = remote_output_folder(plate_root)
    if remote is not None:
        return remote / name
    if plate_root is not None and Path(str(plate_root)).parent.is_dir():
        return Path(str(plate_root)).parent / name
    return Path.home() / name


def default_labels_path(plate_root, loaded_csv: Path | None = None, home: Path | None = None) -> Path:
    """Where "Save labels" proposes to write: beside the CSV the labels came from, else
    ~/napari-dcmix/ (for a plate at a URL: its output folder); never inside the plate folder (images
    stay untouched) and never over the loaded CSV itself (it may hold columns the plugin does not write)."""
    from .plate.location import PlateLocation

    location = PlateLocation.of(plate_root)
    folder = remote_output_folder(location) or Path(home or Path.home()) / "napari-dcmix"
    if loaded_csv is not None and not location.contains(Path(loaded_csv).parent):
        folder = Path(loaded_csv).parent
    name = f"{location.name or 'plate'}_labels.csv"
    path = folder / name
    if loaded_csv is not None and path.resolve() == Path(loaded_csv).resolve():
        path = folder / f"{location.name or 'plate'}_labels_edited.csv"
    return path


def default_model_path(plate_root, kind: str, last_folder: Path | None = None) -> Path:
    """A model path outside the plate folder (image folders stay read-only): the last folder, else
    the output folder of a plate at a URL, else home."""
    from .plate.location import PlateLocation

    location = PlateLocation.of(plate_root) if plate_root is not None else None
    name = f"{location.name if location else 'dcmix'}_{kind}.pt"
    for folder in (last_folder, remote_output_folder(location), Path.home()):
        if folder is not None and folder.is_dir() and os.access(folder, os.W_OK) and not (
                location and location.contains(folder)):
            return folder / name
    return Path.home() / name
