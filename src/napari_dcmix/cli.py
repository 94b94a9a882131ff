"""``napari-dcmix``: the same engine as the docks, headless (cluster GPUs, batch jobs, scripts).

Every user error prints one line ``error: …`` on stderr and exits with code 2, never a traceback.
Progress goes to stderr; ``--json`` prints one JSON object on stdout. Every file or site that was
skipped or repaired is a ``warning:`` line and part of the JSON's ``problems``/``skipped`` (``report``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from pathlib import Path

from . import report
from .errors import DcmixError


def _progress(text: str, final: bool = False) -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K" + text + ("\n" if final else ""))
    elif final:
        sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _emit(args, payload: dict, lines: list[str]) -> None:
    plate = getattr(args, "_dcmix_plate", None)
    if plate is not None and plate.is_remote:  # what was fetched: the JSON and one line on stderr
        payload["transfers"] = plate.transfers()
        print(f"fetched {_transfer_line(plate.transfers())} from {plate.location}", file=sys.stderr)
    payload = report.finish(args, payload)
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=2, default=str))
    else:
        print("\n".join(lines))


def _transfer_line(counts: dict) -> str:
    size = counts["bytes"]
    amount = f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"
    return (f"{amount} in {counts['requests']} requests ({counts['retries']} retried, {counts['cache_hits']} "
            f"reads from the memory cache, {counts['disk_hits']} from the disk cache, {counts['missing']} missing keys)")


def _check_output(path: str, plate_root=None, folder: bool = False) -> Path:
    """Fail before hours of work, not after: the output folder must exist and be writable, outside plates."""
    from ._io import check_not_in_plate

    out = check_not_in_plate(path, [plate_root] if plate_root is not None else [])
    if folder:
        if out.exists() and not out.is_dir():
            raise DcmixError(f"{out} is a file; give a folder for the outputs")
        if not out.parent.is_dir():
            raise DcmixError(f"cannot write into {out}: folder {out.parent} does not exist; create it first")
        out.mkdir(exist_ok=True)
        if not os.access(out, os.W_OK):
            raise DcmixError(f"cannot write into {out}: it is not writable; choose another folder")
        return out
    if out.is_dir():
        raise DcmixError(f"{out} is a folder; give a file name for the output")
    if not out.parent.is_dir():
        raise DcmixError(f"cannot write {out}: folder {out.parent} does not exist; create it or choose another path")
    if not os.access(out.parent, os.W_OK):
        raise DcmixError(f"cannot write {out}: folder {out.parent} is not writable; choose another path")
    return out


REMOTE_FLAGS = {"cache_size": "--cache-size", "disk_cache": "--disk-cache", "s3_endpoint": "--s3-endpoint",
                "s3_signed": "--s3-signed"}


def _remote_settings(args, location):
    """How a plate at a URL is read (environment, then flags); refuses these flags for a plate folder
    (and the S3 ones for an http(s) plate): ignoring them would let the user believe they took effect."""
    from .plate.remote import RemoteSettings, parse_size, user_cache_folder

    given = [flag for name, flag in REMOTE_FLAGS.items() if getattr(args, name, None) not in (None, False)]
    wrong = given if not location.is_remote else [f for f in given if f.startswith("--s3") and location.scheme != "s3"]
    if wrong:
        where = "a plate folder" if not location.is_remote else f"a {location.scheme}:// plate"
        raise DcmixError(f"{wrong[0]} does nothing for {where}; it applies to plates at "
                         f"{'a URL' if not location.is_remote else 'an s3:// URL'}: leave it out")
    if not location.is_remote:
        return None
    disk = getattr(args, "disk_cache", None)
    return RemoteSettings.from_env(
        cache_bytes=parse_size(args.cache_size) if getattr(args, "cache_size", None) is not None else None,
        disk_cache=(user_cache_folder() if disk == "default" else Path(disk).expanduser()) if disk else None,
        s3_endpoint=getattr(args, "s3_endpoint", None), s3_signed=True if getattr(args, "s3_signed", False) else None)


def _open(args):
    from .plate import Plate
    from .plate.location import PlateLocation

    location = PlateLocation.of(args.plate)
    remote = _remote_settings(args, location)
    if remote is not None:
        _progress(f"opening {location} (its metadata; pixels are fetched per site when read)", final=True)
    steps = Plate.open_steps(args.plate, args.pattern, getattr(args, "channel_names", None), remote)
    while True:
        try:
            _progress(next(steps).what)
        except StopIteration as done:
            plate = done.value
            break
    if remote is not None:
        _progress(f"opened: {len(plate.wells())} wells, {len(plate.sites)} sites; {_transfer_line(plate.transfers())}",
                  final=True)
    args._dcmix_plate = plate
    report.track(args, plate.problems)
    return plate


def _labels(args, plate):
    from .plate import read_labels

    labels = read_labels(args.labels, plate.sites, args.label_column)
    report.track(args, labels.problems)
    return labels


# --- commands ------------------------------------------------------------------------------------
def cmd_sample_plate(args) -> None:
    from .plate.sample import write_sample_plate

    start = time.perf_counter()
    out = write_sample_plate(Path(args.out).expanduser(), wells=args.wells, sites=args.sites, size=args.size, seed=args.seed)
    _emit(args, {"path": str(out), "seconds": time.perf_counter() - start},
          [f"sample plate written to {out} ({args.wells} wells, {args.sites} sites, labels in {out / 'labels.csv'})"])


def cmd_inspect(args) -> None:
    plate = _open(args)
    if args.check:
        _check_sites(plate)
    info = plate.summary()
    if args.labels:
        labels = _labels(args, plate)
        info["label_column"] = labels.column
        info["labels"] = labels.counts()
    else:
        info["labels"] = None
    lines = [f"layout:   {info['layout']}", f"plates:   {', '.join(p or '(one)' for p in info['plates'])}",
             f"wells:    {info['wells']} (of a {info['format']}-well plate)", f"sites:    {info['sites']} per well",
             f"channels: {', '.join(info['channels'])}", f"image:    {info['shape']} {info['dtype']}"]
    if info["labels"] is not None:
        lines.append(f"labels ({info['label_column']}): " + ", ".join(f"{k} {v}" for k, v in info["labels"].items()))
    _emit(args, info, lines)  # problems: as warning lines on stderr, and in the JSON


def _check_sites(plate) -> None:
    """Read every site once, so that every unreadable, empty, repaired or re-planed file is reported."""
    from .errors import PlateError, SourceUnavailable

    for i, key in enumerate(plate.sites, 1):
        try:
            plate.read_site(key)
        except SourceUnavailable as err:
            raise SourceUnavailable(f"the check stopped at {key.label()}, site {i} of {len(plate.sites)}: {err}; "
                                    "run it again when the storage answers") from None
        except PlateError:
            pass  # recorded in plate.problems
        _progress(f"checked {i}/{len(plate.sites)} sites")
    _progress(f"checked {len(plate.sites)} sites", final=True)


def _train_config(args, labels, **overrides):
    from .training import TrainConfig, config_fields

    values = {f.name: getattr(args, f.name) for f in config_fields() if hasattr(args, f.name)}
    values.update(label_column=labels.column, **overrides)
    return TrainConfig(**values)


def _train_progress(ev, prefix: str = "") -> None:
    if ev.kind == "notice":
        print(f"warning: {ev.message}", file=sys.stderr)
    elif ev.kind == "start":
        _progress(prefix + ev.message, final=True)
    elif ev.kind == "step":
        _progress(f"{prefix}step {ev.step}/{ev.total_steps} loss {ev.loss:.3f} acc {ev.train_accuracy:.2f} eta {ev.eta:.0f}s")
    elif ev.kind == "epoch":
        imp = ", ".join(f"{c} {v:.2f}" for c, v in (ev.importance or {}).items())
        val = "" if math.isnan(ev.val_accuracy) else f" val {ev.val_accuracy:.2f}"
        _progress(f"{prefix}step {ev.step}/{ev.total_steps} loss {ev.loss:.3f} acc {ev.train_accuracy:.2f}{val}"
                  + (f" | α {imp}" if imp else ""), final=True)


def _warn_not_learned(what: str, verdict) -> None:
    if not verdict.learned:
        print(f"warning: {what} learned nothing you can trust: {verdict.reason}; its α is not an answer", file=sys.stderr)


def cmd_train(args) -> None:
    from .plate.conditions import read_conditions
    from .training import TrainedModel, Trainer

    plate = _open(args)
    out = _check_output(args.out, plate.location)
    labels = _labels(args, plate)
    init = TrainedModel.load(args.init) if args.init else None
    trainer = Trainer(plate, labels.site_labels, _train_config(args, labels), init=init)
    interrupted = _drive_training(args, trainer, out)
    result, verdict = trainer.result, trainer.verdict
    if not trainer.dist.is_main:
        return  # data parallel: rank 0 writes the model and prints
    conditions = read_conditions(args.labels, plate.sites, labels.column)
    if conditions.columns:  # dose, compound, well_type…: kept with the model that learned from them
        result.metadata["conditions"] = conditions.to_metadata()
    result.save(out)
    if trainer.losses.down:  # the storage went away while the test wells were scored: the verdict is partial
        raise DcmixError(f"training finished, but the plate's storage stopped answering while the test wells were "
                         f"scored ({trainer.losses.unavailable}); the model was saved to {out} with a verdict on the "
                         "wells that could be read; re-run when the server answers")
    lost = trainer.losses.summary()
    if lost:
        print(f"warning: {lost}", file=sys.stderr)
    history = result.metadata.get("history", [])
    payload = {"channels": result.channels, "importance": result.importance(), "classes": result.classes,
               "learned": verdict.learned, "test_accuracy": verdict.accuracy, "auc": verdict.auc,
               "p_value": verdict.p_value, "test_wells": verdict.n_wells, "reason": verdict.reason,
               "val_accuracy": result.metadata.get("val_accuracy"), "steps": result.metadata.get("steps"),
               "epochs": len(history), "images_seen": trainer.images_seen, "world_size": trainer.dist.world_size,
               "device": str(trainer.device),
               "seconds": history[-1]["seconds"] if history else 0.0, "model": str(out), "interrupted": interrupted}
    _warn_not_learned("the model", verdict)
    lines = [f"model saved to {out}" + (" (stopped early: best model so far)" if interrupted else ""),
             f"  {verdict.summary()}"]
    if payload["importance"]:
        lines += [f"  {c:>12}  α = {v:.3f}" for c, v in sorted(payload["importance"].items(), key=lambda kv: -kv[1])]
    _emit(args, payload, lines)


def _drive_training(args, trainer, out: Path) -> bool:
    """Run training with its progress on stderr; True when it was interrupted (Ctrl-C, SIGTERM), the best
    model so far kept in ``trainer.result``. A run that fails or that its data stops (too many sites
    lost, the storage gone) saves its best model (rank 0) and raises the error saying so."""
    from .training.stopping import stop_requested

    events = trainer.run()
    try:
        for ev in events:
            _train_progress(ev)
            if ev.kind == "epoch":
                report.report_of(args).flush()  # sites that could not be read meanwhile: named now, not at the end
    except KeyboardInterrupt:
        events.close()  # keeps the best model so far
        if trainer.result is None:
            raise  # stopped before the run began: nothing to save
        if stop_requested():
            print(f"warning: stopped by SIGTERM at step {trainer.result.metadata.get('steps')}: the best model so far "
                  "is kept", file=sys.stderr)
        return True
    except DcmixError as err:
        if trainer.result is not None and trainer.has_best_model:
            try:
                if trainer.dist.is_main:
                    trainer.result.save(out)
            except DcmixError as failed:
                raise DcmixError(f"{err}; the best model so far could not be saved either: {failed}") from None
            raise DcmixError(f"{err}; the best model so far was saved to {out}") from None
        raise
    return False


def cmd_explain(args) -> None:
    from .training.explain import ExplainConfig, Explainer
    from .training.matrix_figure import save_matrix
    from .training.panel import trust_line

    plate = _open(args)
    out = _check_output(args.out, plate.location, folder=True) if args.out else None
    labels = _labels(args, plate)
    config = ExplainConfig(reference=args.reference, folds=args.folds, seeds=args.seeds,
                           include_all=not args.no_all, train=_train_config(args, labels, model="dcmix"))
    explainer = Explainer(plate, labels.site_labels, config)
    search = _stain_search(args, plate, labels.site_labels, config)  # refuses a bad --keep before any training
    stopped = _drive_explain(args, explainer)
    matrix = explainer.result
    if stopped is not None and (matrix is None or not matrix.rows):
        raise DcmixError(f"{stopped}; no fold model had finished: nothing to keep")
    for row in matrix.rows:
        _warn_not_learned(f"the {row.phenotype} model", row.verdict)
    panel = explainer.panel  # the prediction model: every phenotype's models combined
    model_path = out / "phenotype_panel.pt" if out is not None and panel is not None else None
    failed = _write_each([  # the trained models first; one file that cannot be written loses no other
        (model_path is not None, lambda: panel.save(model_path)),
        (out is not None and bool(matrix.rows), lambda: save_matrix(matrix, out / "importance_per_phenotype.csv", None)),
        (out is not None and bool(matrix.rows), lambda: save_matrix(matrix, None, out / "importance_per_phenotype.png"))])
    if stopped is not None:  # sites lost, the storage gone: the folds finished before it are kept
        failed.insert(0, f"{stopped}; the matrix holds the fold models finished before it (partial)"
                      + (f", written to {out}" if out is not None else ""))
    payload = matrix.to_dict()
    payload["model"] = str(model_path) if model_path is not None else None
    if panel is not None:
        payload["panel"] = {k: panel.metadata[k] for k in ("test_accuracy", "learned", "z_prime", "verdict")}
        if not panel.learned:
            print(f"warning: the phenotype panel learned nothing you can trust ({panel.metadata['verdict']['reason']});"
                  " do not trust its calls", file=sys.stderr)
    lines = [f"channel importance per phenotype (vs {matrix.reference}); α, then held-out accuracy / AUC:",
             f"  {'':>18}  " + "  ".join(f"{c:>6}" for c in matrix.channels)]
    for row in matrix.rows:
        flag = "" if row.learned else "   NOT LEARNED"
        lines.append(f"  {row.phenotype:>18}  " + "  ".join(f"{row.importance[c]:6.2f}" for c in matrix.channels)
                     + f"   acc {row.verdict.accuracy:.2f} AUC {row.verdict.auc:.2f}{flag}")
    if out is not None:
        lines.append(f"matrix written to {out / 'importance_per_phenotype.csv'} and .png")
    if search is not None and matrix.complete:
        lines += _run_stain_search(search, explainer, payload, out, plate, failed)
    if panel is not None:
        lines.append(f"prediction model: the {trust_line(panel)}")
        lines.append(f"  saved to {model_path}; predict with: napari-dcmix predict {model_path} PLATE" if model_path
                     else "  not saved: give --out DIR to write it as DIR/phenotype_panel.pt for predict")
    if failed:  # every output that could be written is; the error names the others
        raise DcmixError("; ".join(failed))
    _emit(args, payload, lines)


def _drive_explain(args, explainer) -> DcmixError | None:
    """Run explain with its progress on stderr. Ctrl-C or SIGTERM keeps the phenotypes finished so far; so
    does a fold model that its data stops (too many sites lost, the storage gone): that error is returned,
    to be raised once the finished folds are written."""
    from .errors import SourceUnavailable
    from .training.explain_text import progress_text
    from .training.site_losses import SitesLost

    events, said = explainer.run(), set()
    try:
        for ev in events:
            if ev.kind == "train":
                if ev.train_event.kind == "notice" and ev.train_event.message not in said:  # once, not per fold
                    said.add(ev.train_event.message)
                    print(f"warning: {ev.train_event.message}", file=sys.stderr)
                if ev.train_event.kind == "step":
                    _progress(f"{progress_text(ev)}, {100 * ev.fraction:.0f}% done")
                elif ev.train_event.kind == "epoch":
                    report.report_of(args).flush()  # sites that could not be read meanwhile: named now
            elif ev.message:
                _progress(ev.message, final=True)
    except KeyboardInterrupt:
        events.close()
        print(f"warning: {_why_stopped()}; the matrix holds only the phenotypes finished so far", file=sys.stderr)
    except (SitesLost, SourceUnavailable) as err:
        events.close()
        return err
    return None


def _write_each(writes: list) -> list[str]:
    """Run each ``(wanted, write)`` that is wanted; the error messages of those that failed."""
    failed = []
    for wanted, write in writes:
        if wanted:
            try:
                write()
            except DcmixError as err:
                failed.append(str(err))
    return failed


def _stain_search(args, plate, site_labels, config):
    """The ``--stains`` search, checked before any training (None without --stains)."""
    from .training.config import parse_classes
    from .training.stains import StainsConfig, StainSearch

    keep = parse_classes(args.keep) or []
    if keep and not args.stains:
        raise DcmixError("--keep names the stains the --stains search keeps; add --stains")
    return StainSearch(plate, site_labels, StainsConfig(keep=keep, explain=config)) if args.stains else None


def _run_stain_search(search, explainer, payload: dict, out, plate, failed: list[str]) -> list[str]:
    """Run the stain search after explain (its all-channels run reused); fills the payload, writes
    stains.csv / .png with --out (what cannot be written is added to ``failed``); returns the lines printed."""
    from .training.stains_figure import save_stains

    from .errors import SourceUnavailable
    from .training.site_losses import SitesLost

    search.reuse(explainer)
    events = search.run()
    try:
        for ev in events:
            if ev.kind == "train" and ev.explain_event.train_event.kind == "step":
                _progress(f"stains: {ev.label}, run {ev.runs_done + 1}/{ev.runs_total}, {100 * ev.fraction:.0f}% done")
            elif ev.kind != "train" and ev.message:
                _progress(ev.message, final=True)
    except KeyboardInterrupt:
        events.close()
        print(f"warning: {_why_stopped()}; the stain search holds only the runs finished so far", file=sys.stderr)
    except (SitesLost, SourceUnavailable) as err:  # the runs finished before it are kept and written
        events.close()
        failed.append(f"the stain search stopped: {err}; it holds only the runs finished before")
    answer = search.result
    payload.update({"stains": {p: s.to_dict() for p, s in answer.phenotypes.items()},
                    "plate_panel": answer.plate_panel, "stains_complete": answer.complete})
    lines = [f"which stains can be dropped (vs {answer.reference}; held-out accuracy alone / without each stain):"]
    for phenotype, stains in answer.phenotypes.items():
        needed = stains.needed()
        cells = [f"{c} {_acc(stains.alone.get(c))}/{_acc(stains.without.get(c))}{'*' if needed.get(c) else ''}"
                 for c in answer.channels]
        lines.append(f"  {phenotype:>18}  " + "  ".join(cells))
        panel = "+".join(stains.smallest_panel) if stains.smallest_panel else "none"
        lines.append(f"  {'':>18}  smallest panel: {panel} ({stains.panel_reason})")
        for warning in (stains.agreement.warning if stains.agreement else None,
                        stains.second_opinion.warning if stains.second_opinion else None):
            if warning:
                print(f"warning: {phenotype}: {warning}", file=sys.stderr)
    lines.append("  (* = dropping it loses accuracy)")
    lines.append(f"the next assay needs: {', '.join(answer.plate_panel) if answer.plate_panel else 'no panel found'}"
                 + ("" if answer.complete else " (stopped early: partial)"))
    if out is not None and answer.phenotypes:
        failed += _write_each([(True, lambda: save_stains(answer, out / "stains.csv", None)),
                               (True, lambda: save_stains(answer, None, out / "stains.png", plate.channel_colors))])
        lines.append(f"stain search written to {out / 'stains.csv'} and .png")
    return lines


def _why_stopped() -> str:
    from .training.stopping import stop_requested

    return "stopped by SIGTERM" if stop_requested() else "interrupted"


def _acc(figures) -> str:
    if figures is None:
        return "…"
    return f"{figures.accuracy:.2f}" if figures.learned else "--"


def cmd_predict(args) -> None:
    from .training import TrainedModel, well_probabilities
    from .training.exports import write_plate_predictions

    trained = TrainedModel.load(args.model)
    plate = _open(args)
    out = _check_output(args.out, plate.location)
    figures = {name: _check_png(path, plate.location) for name, path in (("plate_map", args.plate_map),
                                                                       ("montage", args.montage)) if path}
    _check_channels(trained, plate)
    if args.montage and args.montage_k < 1:
        raise DcmixError(f"--montage-k {args.montage_k}: the montage needs at least one site per class; give k ≥ 1")
    if args.plate_map:
        from .figures.plate_map import check_value

        check_value(args.plate_map_value, trained.classes)
    if args.reference is not None and not args.labels:
        raise DcmixError("--reference is the negative control among the labeled wells; give --labels CSV too")
    controls = None
    if args.labels:  # Z′ of every phenotype: the labels and the reference are checked before any work
        from .training.controls import resolve_reference

        labels = _labels(args, plate)
        controls = (resolve_reference(labels.classes, args.reference), labels.well_labels())

    def progress(pred):
        _progress(f"predicted {pred.done}/{pred.total} sites, eta {pred.eta:.0f}s")

    written = write_plate_predictions(trained, plate, out, fmt=args.format, per_site=args.per_site,
                                      device=args.device, progress=progress)
    if written is None:
        return  # data parallel: rank 0 has every shard and writes the CSV and figures
    site_probs, counts = written.site_probabilities, written.counts
    unit = "wells" if args.format == "csv" and not args.per_site else "sites"
    _progress(f"{written.rows} {unit} predicted", final=True)
    payload = {"csv": str(out), "rows": written.rows, "classes": trained.classes, "counts": counts}
    lines = [f"predictions written to {out}"] + [f"  {c}: {n}" for c, n in counts.items()]
    if controls is not None:
        from .training.controls import json_z_primes, z_primes, z_primes_text

        reference, well_labels = controls
        well_probs = {w: dict(zip(trained.classes, p)) for w, p in well_probabilities(site_probs).items()}
        values = z_primes(well_probs, well_labels, reference, trained.classes)
        print(z_primes_text(values, reference), file=sys.stderr)
        payload.update(reference=reference, z_prime=json_z_primes(values))
    model_name = trained.display_name
    if "plate_map" in figures:
        from .figures.plate_map import save_plate_maps

        maps = save_plate_maps(figures["plate_map"], plate, well_probabilities(site_probs), trained.classes,
                               value=args.plate_map_value, model_name=model_name)
        payload["plate_map"] = [str(p) for p in maps]
        lines += [f"plate map written to {p}" for p in maps]
    if "montage" in figures:
        from .figures.montage import save_montage

        problems = save_montage(figures["montage"], plate, site_probs, trained.classes, k=args.montage_k,
                                model_name=model_name)
        for problem in problems:
            print(f"warning: {problem}", file=sys.stderr)
        payload["montage"] = str(figures["montage"])
        lines.append(f"montage written to {figures['montage']}")
    _emit(args, payload, lines)


def _check_channels(trained, plate) -> None:
    """A clear channel mismatch message (with the --channel-names hint) before any work."""
    try:
        trained.channel_order(plate.channels)
    except DcmixError as err:
        from .plate.channels import rename_hint

        raise DcmixError(f"{err}{rename_hint(trained.channels, plate.channels)}") from None


def cmd_suggest(args) -> None:
    """Rank the unlabelled wells by what a label would teach the model (``training/suggest.py``)."""
    from .training import TrainedModel
    from .training.suggest import suggest_wells, write_suggestions

    trained = TrainedModel.load(args.model)
    plate = _open(args)
    out = _check_output(args.out, plate.location) if args.out else None
    _check_channels(trained, plate)
    labels = _labels(args, plate)
    result = None
    for ev in suggest_wells(trained, plate, labels.well_labels(), n=args.n, device=args.device):
        if ev.kind == "done":
            result = ev.result
            _progress(ev.message, final=True)
        else:
            _progress(ev.message)
    report.track(args, plate.problems)  # sites found unreadable while predicting
    if result.warning:
        print(f"warning: {result.warning}", file=sys.stderr)
    if result.skipped:
        print(f"warning: {len(result.skipped)} unlabelled well(s) have no readable site and were not ranked: "
              f"{_well_names(result.skipped)}; see the warnings above for each file, and re-export them",
              file=sys.stderr)
    if len(result) < args.n:
        print(f"warning: only {len(result)} unlabelled well(s) could be ranked, fewer than --n {args.n}",
              file=sys.stderr)
    with_plate = len(plate.plates) > 1
    if out is not None:
        write_suggestions(out, result, with_plate)
    payload = {**result.to_dict(), "csv": str(out) if out is not None else None}
    lines = [f"wells to label next ({trained.display_name}; {result.candidates} unlabelled wells ranked):"]
    lines += [f"  {s.rank:>3}. {(s.plate + ':') if with_plate else ''}{s.well}  score {s.score:.2f}  {s.reason}"
              for s in result.items]
    lines.append(f"rule: {result.rule}")
    if out is not None:
        lines.append(f"suggestions written to {out}")
    _emit(args, payload, lines)


def _well_names(wells, limit: int = 20) -> str:
    names = [f"{p}:{w}" if p else w for p, w in wells]
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _check_png(path: str, plate_root) -> Path:
    out = _check_output(path, plate_root)
    if out.suffix.lower() != ".png":
        raise DcmixError(f"{out.name}: figures are written as PNG; give a file name ending in .png")
    return out


def cmd_importance(args) -> None:
    from .training import TrainedModel, run_permutation_importance

    trained = TrainedModel.load(args.model)
    payload = {"channels": trained.channels, "model": trained.kind, "importance": trained.importance()}
    if args.permutation:
        if not args.labels:
            raise DcmixError("--permutation needs --labels CSV (and --label-column) to measure accuracy drops")
        args.plate = args.permutation
        plate = _open(args)
        labels = _labels(args, plate)
        result = run_permutation_importance(trained, plate, labels.site_labels, device=args.device)
        payload["permutation"] = result["drop"]
        payload["permutation_baseline_accuracy"] = result["baseline_accuracy"]
    lines = []
    for c in trained.channels:
        alpha = f"α {payload['importance'][c]:.3f}" if payload["importance"] else "α n/a (all-channels model)"
        perm = f"  permutation drop {payload['permutation'][c]:+.3f}" if "permutation" in payload else ""
        lines.append(f"{c:>12}  {alpha}{perm}")
    _emit(args, payload, lines)


def cmd_demo(args) -> None:
    from .demo import run_demo

    run_demo(plate=args.plate, screenshots=args.screenshots)


def build_parser() -> argparse.ArgumentParser:
    """The command line (``cli_parser``), each subcommand bound to its ``cmd_*`` function here."""
    from .cli_parser import build

    return build({"sample-plate": cmd_sample_plate, "inspect": cmd_inspect, "train": cmd_train,
                  "explain": cmd_explain, "predict": cmd_predict, "suggest": cmd_suggest, "importance": cmd_importance,
                  "demo": cmd_demo})


def main(argv: list[str] | None = None) -> int:
    """Run one command. Under torchrun only rank 0 speaks: the other ranks work silently."""
    from .cli_checks import preflight
    from .training.distributed import teardown, world_from_env
    from .training.stopping import stop_requested

    args, real_stderr = None, sys.stderr
    quiet = contextlib.ExitStack()
    try:
        if world_from_env().rank > 0:
            sink = quiet.enter_context(open(os.devnull, "w"))
            quiet.enter_context(contextlib.redirect_stdout(sink))
            quiet.enter_context(contextlib.redirect_stderr(sink))
        with quiet:
            try:
                args = build_parser().parse_args(argv)
                if args.func is not cmd_demo:  # napari's own event loop handles its signals
                    quiet.enter_context(_sigterm_stops())
                preflight(args)  # bad numbers, an output naming an input: refused before any work
                args.func(args)
                return 0
            except DcmixError as err:
                report.on_error(args)
                print(f"error: {err}", file=sys.stderr)
                return 2
            except KeyboardInterrupt:
                if stop_requested():
                    print("error: stopped by SIGTERM before the command finished", file=sys.stderr)
                    return 143
                print("error: interrupted", file=sys.stderr)
                return 130
            except BrokenPipeError:
                return 0
            finally:
                teardown()
    finally:
        sys.stderr = real_stderr


@contextlib.contextmanager
def _sigterm_stops():
    """SIGTERM (a scheduler's time limit or its ``scancel``, ``kill``, torchrun passing it on) ends the command
    as Ctrl-C does. A training run stops at its next optimiser step — agreed across torchrun's ranks, so
    none waits in a collective for one that left — and keeps its best model, which is saved: the run's
    clean-up is never cut short. Before any step, and in commands that do not train, at once (outputs are
    atomic: no half file, no temporary file). The CLI alone does this: the docks' Stop closes the run."""
    import signal
    import threading

    from .training.stopping import clear_stop, request_stop, stop_requested, training_started

    def stop(signum, frame) -> None:
        if stop_requested():
            return  # a second SIGTERM while the first is acted on: the best model is being saved
        request_stop()
        if not training_started():
            raise KeyboardInterrupt

    clear_stop()
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only (a CLI called from a worker thread)
        return
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        clear_stop()


if __name__ == "__main__":
    sys.exit(main())
