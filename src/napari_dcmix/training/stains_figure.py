"""The stain search as a figure (per phenotype: accuracy against panel size, and the channel x
{alone, without} map in the channel colours) and as CSV, for the CLI and the Explain dock.

An "alone" model that learned nothing is a grey cell with no number; a "without" model that learned
nothing is the answer itself - that stain cannot be dropped - and says so.
"""

from __future__ import annotations

import csv
import io
import os

from .._io import atomic_write, atomic_write_bytes
from .stains import StainsAnswer

NOT_LEARNED_SHADE = "#9a9a9a"
DEFAULT_COLORS = ("#4f8cff", "#3fcf5f", "#ff5f5f", "#ffbf3f", "#cf5fff", "#3fcfcf", "#ff8f3f", "#bfbfbf")


def _color(colors, j: int) -> str:
    color = colors[j] if colors and j < len(colors) and colors[j] else DEFAULT_COLORS[j % len(DEFAULT_COLORS)]
    return {"blue": "#4f8cff", "green": "#3fcf5f", "red": "#ff5f5f", "yellow": "#ffdf3f", "magenta": "#ef5fef",
            "cyan": "#3fdfdf", "gray": "#bfbfbf", "grey": "#bfbfbf"}.get(str(color).lower(), color)


def draw_stains(fig, answer: StainsAnswer, text_color: str = "black", colors=None, only: list[str] | None = None,
                background: str | None = None, stacked: bool = False) -> None:
    """One row of two panels per phenotype on ``fig`` (``only``: those phenotypes; ``stacked``: the
    curve above the map, for a narrow dock)."""
    fig.clear()
    phenotypes = [s for p, s in answer.phenotypes.items() if only is None or p in only]
    if not phenotypes:
        ax = fig.add_subplot()
        ax.axis("off")
        ax.text(0.5, 0.5, "no stain search yet", ha="center", va="center", color=text_color)
        return
    n = len(phenotypes)
    grid = (fig.add_gridspec(2 * n, 1, height_ratios=(1.4, 1.0) * n) if stacked else
            fig.add_gridspec(n, 2, width_ratios=(1.3, 1.0)))
    for i, stains in enumerate(phenotypes):
        axes = ((fig.add_subplot(grid[2 * i, 0]), fig.add_subplot(grid[2 * i + 1, 0])) if stacked else
                (fig.add_subplot(grid[i, 0]), fig.add_subplot(grid[i, 1])))
        _draw_curve(axes[0], stains, len(answer.channels), text_color)
        _draw_map(axes[1], stains, answer.channels, text_color, colors)
        if background is not None:
            axes[0].set_facecolor(background)
            axes[1].set_facecolor(background)


def _draw_curve(ax, stains, n_channels: int, text_color: str) -> None:
    size = 7
    points = [(len(s.channels), s.figures.accuracy, s.figures.spread) for s in stains.curve]
    if points:
        xs, ys, sd = zip(*points)
        ax.errorbar(xs, ys, yerr=sd, marker="o", color="#4f8cff", capsize=3, lw=1.5)
    ax.axhline(stains.full.accuracy, color=text_color, ls="--", lw=0.8)
    ax.text(0.6, stains.full.accuracy, "all stains", va="bottom", ha="left", fontsize=size, color=text_color)
    before: tuple = ()
    for step in stains.curve:  # each point names what it added: "Mito", then "+ER"
        if len(step.channels) < n_channels:
            added = [c for c in step.channels if c not in before]
            label = ("+" if before else "") + "+".join(added)
            ax.annotate(label, (len(step.channels), step.figures.accuracy), textcoords="offset points",
                        xytext=(0, 7), ha="center", fontsize=size, color=text_color)
            before = step.channels
    if stains.smallest_panel:
        chosen = next(s for s in stains.curve if list(s.channels) == stains.smallest_panel)
        ax.plot([len(chosen.channels)], [chosen.figures.accuracy], marker="*", ms=14, color="#ffbf3f", zorder=5,
                label="smallest panel: " + "+".join(stains.smallest_panel))
        ax.legend(loc="lower right", fontsize=size, frameon=False, labelcolor=text_color)
    verdict = "" if stains.full.learned else " (NOT LEARNED with every stain)"
    ax.set_title(f"{stains.phenotype}: accuracy by panel size{verdict}", fontsize=8, color=text_color)
    ax.set_xlim(0.5, n_channels + 0.5)
    ax.set_ylim(0.4, 1.05)
    ax.set_xticks(range(1, n_channels + 1))
    ax.set_xlabel("stains in the panel", fontsize=size, color=text_color)
    ax.set_ylabel("held-out accuracy", fontsize=size, color=text_color)
    ax.tick_params(colors=text_color, labelsize=size)


def _draw_map(ax, stains, channels: list[str], text_color: str, colors) -> None:
    from matplotlib.patches import Rectangle

    size = 7
    needed = stains.needed()
    for j, channel in enumerate(channels):
        color = _color(colors, j)
        for i, (kind, figures) in enumerate((("alone", stains.alone.get(channel)),
                                             ("without", stains.without.get(channel)))):
            if figures is None:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="none", edgecolor=NOT_LEARNED_SHADE))
                ax.text(j, i, "…", ha="center", va="center", fontsize=size, color=text_color)
                continue
            if kind == "alone" and not figures.learned:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=NOT_LEARNED_SHADE, alpha=0.6))
                ax.text(j, i, "not\nlearned", ha="center", va="center", fontsize=size - 1, color="black")
                continue
            strength = max(0.0, min(1.0, (figures.accuracy - 0.5) / 0.5))
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=color, alpha=0.15 + 0.85 * strength))
            text = f"{figures.accuracy:.2f}" if figures.learned else "—"
            if kind == "without" and needed.get(channel):
                text += "\nneeded"
            ax.text(j, i, text, ha="center", va="center", fontsize=size, color="black", fontweight="bold"
                    if kind == "without" and needed.get(channel) else "normal")
    ax.set_xlim(-0.5, len(channels) - 0.5)
    ax.set_ylim(1.5, -0.5)
    ax.set_xticks(range(len(channels)), channels)
    ax.set_yticks([0, 1], ["alone", "without"])
    ax.tick_params(colors=text_color, labelsize=size, length=0)
    for tick, j in zip(ax.get_xticklabels(), range(len(channels))):
        tick.set_color(_color(colors, j))
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title("held-out accuracy: each stain alone,\nand without it (— learns nothing)", fontsize=7,
                 color=text_color)


def stains_png(answer: StainsAnswer, colors=None, dpi: int = 150) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.0 + 0.9 * len(answer.channels), 0.5 + 2.6 * max(1, len(answer.phenotypes))), dpi=dpi)
    FigureCanvasAgg(fig)
    draw_stains(fig, answer, colors=colors)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def stains_rows(answer: StainsAnswer) -> list[dict]:
    """One CSV row per phenotype x channel: alone, without, α, the forest's share, and the panels."""
    rows = []
    for phenotype, stains in answer.phenotypes.items():
        needed = stains.needed()
        second = stains.second_opinion
        for channel in answer.channels:
            alone, without = stains.alone.get(channel), stains.without.get(channel)
            rows.append({
                "phenotype": phenotype, "channel": channel, "alpha": _fmt(stains.alpha.get(channel)),
                "all_accuracy": _fmt(stains.full.accuracy), "all_learned": stains.full.learned,
                "alone_accuracy": _fmt(alone.accuracy if alone else None), "alone_auc": _fmt(alone.auc if alone else None),
                "alone_spread": _fmt(alone.spread if alone else None), "alone_learned": alone.learned if alone else "",
                "without_accuracy": _fmt(without.accuracy if without else None),
                "without_auc": _fmt(without.auc if without else None),
                "without_learned": without.learned if without else "", "needed": needed.get(channel, ""),
                "in_smallest_panel": channel in (stains.smallest_panel or []) if stains.smallest_panel else "",
                "in_plate_panel": channel in (answer.plate_panel or []) if answer.plate_panel else "",
                "forest_share": _fmt(second.shares.get(channel) if second else None),
                "warning": "; ".join(w for w in (stains.agreement.warning if stains.agreement else None,
                                                 second.warning if second else None) if w),
            })
    return rows


def save_stains(answer: StainsAnswer, csv_path: str | os.PathLike | None, png_path: str | os.PathLike | None,
                colors=None) -> None:
    """Write the stain search as CSV and/or PNG, atomically (callers check the paths with the output guard)."""
    if csv_path is not None:
        rows = stains_rows(answer)
        with atomic_write(csv_path, "w") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["phenotype"])
            writer.writeheader()
            writer.writerows(rows)
    if png_path is not None:
        atomic_write_bytes(png_path, stains_png(answer, colors))


def _fmt(value) -> str:
    return "" if value is None else f"{float(value):.4f}"


__all__ = ["draw_stains", "save_stains", "stains_png", "stains_rows"]
