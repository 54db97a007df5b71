"""The plot of one scenario run, from its history.jsonl, as a PNG (matplotlib, Agg).

Three panels over the same time axis (seconds since the first record), like Jepsen's
rate and latency plots::

    OK RPCs/s per backend      one line per backend: who served, and when it stopped
    errors/s by status code    one line per code (UNAVAILABLE, DEADLINE_EXCEEDED, ...)
    latency p50 / p99 / max    of the RPCs that ended in each time bin (ms, log scale)

Fault windows are shaded across the panels and labelled ("kill b2"), from the event's
begin to its end, with a dashed line where it was in force; named marks are dotted gray
lines; the decisive instant — the decisive verdict's span end, else its first culprit —
is a red line. RPCs are binned by when they ended (when the client learnt the outcome).

Words the page can carry stay out of the image (render() returns them beside the PNG as
``time_axis``): the scenario's name is the heading above the plot and the axis's origin and
bin width its caption. Glyphs are most of a plot's cost, each drawn on its own.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator
from PIL import Image

# Bin widths to choose from (s): about TARGET_BINS bins over a scenario's few seconds.
_BIN_STEPS = (0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
TARGET_BINS = 100
SIZE_IN, DPI = (8.0, 5.2), 80  # 640 x 416 px: readable on a laptop, ~40 kB per plot
_FAULT_COLOURS = ("#f4a261", "#9d8df1", "#e9c46a", "#83c5be", "#f28482", "#90be6d")
MAX_MARK_LABELS = 6  # more would overprint; the lines are still drawn
# Below this many plots per worker, forking workers costs more than it saves.
MIN_JOBS_PER_WORKER = 4
# PNG compression: level 1 is a fifth of the default's (6) time for ~15 % more bytes.
# Opaque RGB and run-length zlib (plots are mostly flat colour): 40 % less encoding time
# than RGBA at level 1, and smaller.
PNG_OPTIONS = {"compress_level": 1, "compress_type": 3}  # 3 = zlib's Z_RLE strategy
# Unhinted glyphs: a fifth faster to draw than matplotlib's forced autohinting, and as
# readable at this size.
_TEXT = {"text.hinting": "none"}


@dataclass
class Timeline:
    """A history read for plotting: RPC arrays (ns since ``origin_ns``) and events."""

    origin_ns: int
    start: np.ndarray
    end: np.ndarray
    backend: np.ndarray  # index into backends
    code: np.ndarray  # index into codes
    backends: list[str]
    codes: list[str]
    events: list[dict] = field(default_factory=list)
    wall_start: str | None = None

    @property
    def span_s(self) -> float:
        ends = [self.end.max() if self.end.size else 0]
        ends += [(e["end_ns"] or e["start_ns"]) - self.origin_ns for e in self.events]
        return max(max(ends) / 1e9, 0.001)


def read(path: Path) -> Timeline:
    """Parse a history.jsonl (chaos/history.py) into arrays."""
    # One JSON array for the whole file: a third of the cost of a json.loads per line
    # (a record is one line: its strings are written with ASCII escapes).
    lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line]
    records = json.loads("[" + ",".join(lines) + "]")
    rpcs = [r for r in records if r["type"] == "rpc"]
    events = [r for r in records if r["type"] != "rpc"]
    wall = next((r["start_wall"] for r in records if r.get("start_wall")), None)
    backends = {
        name: i for i, name in enumerate(dict.fromkeys(r["backend"] or "(none)" for r in rpcs))
    }
    codes = {name: i for i, name in enumerate(dict.fromkeys(r["code"] for r in rpcs))}
    origin = min([r["start_ns"] for r in (rpcs[:1] + events[:1])] or [0])
    as_array = lambda values: np.fromiter(values, np.int64, len(rpcs))  # noqa: E731
    return Timeline(
        origin,
        as_array(r["start_ns"] for r in rpcs) - origin,
        as_array(r["end_ns"] for r in rpcs) - origin,
        as_array(backends[r["backend"] or "(none)"] for r in rpcs),
        as_array(codes[r["code"]] for r in rpcs),
        list(backends),
        list(codes),
        events,
        wall,
    )


def _bin_width(span_s: float) -> float:
    return next((step for step in _BIN_STEPS if span_s / step <= TARGET_BINS), _BIN_STEPS[-1])


def _rates(bins: np.ndarray, keys: np.ndarray, count: int, width: float, nbins: int):
    """Per key: events per second in each bin."""
    flat = np.bincount(keys * nbins + bins, minlength=count * nbins)
    return flat.reshape(count, nbins) / width


def _percentiles(bins: np.ndarray, latency_ms: np.ndarray, nbins: int):
    """p50, p99 and max latency per bin (nearest rank); NaN where a bin is empty."""
    order = np.lexsort((latency_ms, bins))
    sorted_bins, sorted_latency = bins[order], latency_ms[order]
    counts = np.bincount(sorted_bins, minlength=nbins)
    firsts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    result = []
    for p in (50, 99, 100):
        rank = np.maximum(np.ceil(counts * p / 100).astype(np.int64) - 1, 0)
        values = np.full(nbins, np.nan)
        filled = counts > 0
        values[filled] = sorted_latency[(firsts + rank)[filled]]
        result.append(values)
    return result


def decisive_instant(verdict: dict | None, origin_ns: int) -> float | None:
    """Seconds since the origin of what decided the verdict, if it names an instant."""
    if not verdict:
        return None
    if verdict.get("span"):
        return (verdict["span"][1] - origin_ns) / 1e9
    if verdict.get("culprits"):
        return (min(c[0] for c in verdict["culprits"]) - origin_ns) / 1e9
    return None


class Plotter:
    """Renders plots one after another on one reused figure: making the axes and their
    ticks is most of a plot's cost, so only the data artists are replaced per plot."""

    def __init__(self):
        self.figure = Figure(figsize=SIZE_IN, dpi=DPI)
        FigureCanvasAgg(self.figure)
        # Not sharex: shared axes lay out each other's tick labels on every draw; the three
        # get the same limits instead, and only the bottom one shows its labels.
        self.axes = tuple(self.figure.subplots(3, 1))
        self.figure.subplots_adjust(left=0.09, right=0.83, top=0.93, bottom=0.06, hspace=0.18)
        for ax, label in zip(self.axes, ("OK RPC/s", "errors/s", "latency ms"), strict=False):
            # Fixed label places and no tick marks (the grid shows where ticks are): each
            # spares the per-draw layout of every tick label.
            ax.set_ylabel(label, fontsize=8)
            ax.yaxis.set_label_coords(-0.075, 0.5)
            ax.tick_params(labelsize=7, labelbottom=ax is self.axes[2], length=0)
            ax.grid(True, linewidth=0.3, alpha=0.6)
            ax.yaxis.set_major_locator(MaxNLocator(nbins=3))
            # Time ticks on the bottom panel only: each tick is five artists to draw, and
            # the panels line up through the fault windows and the decisive line.
            ax.xaxis.set_major_locator(
                MaxNLocator(nbins=6) if ax is self.axes[2] else NullLocator()
            )
        self.axes[2].set_yscale("log")
        # Plain numbers: the default "10^2" labels go through mathtext, whose parser costs
        # seconds per process; minor ticks would only add labels to lay out.
        self.axes[2].yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0), numticks=5))
        self.axes[2].yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        self.axes[2].yaxis.set_minor_locator(NullLocator())

    def render(self, path: Path, verdict: dict | None = None, title: str = "") -> Plot:
        """The PNG of one history, with ``verdict``'s decisive instant marked, and the
        words for its time axis. ``title`` is drawn above the panels only when given."""
        data = read(path)
        self._clear()
        rate_ax, error_ax, latency_ax = self.axes
        width = _bin_width(data.span_s)
        nbins = int(np.ceil(data.span_s / width)) + 1
        bins = np.clip((data.end / 1e9 / width).astype(np.int64), 0, nbins - 1)
        x = (np.arange(nbins) + 0.5) * width
        ok = (
            data.code == data.codes.index("OK")
            if "OK" in data.codes
            else np.zeros(data.code.size, bool)
        )
        _plot_rates(rate_ax, x, bins[ok], data.backend[ok], data.backends, width, nbins)
        _plot_errors(error_ax, x, bins[~ok], data.code[~ok], data.codes, width, nbins)
        _plot_latency(latency_ax, x, bins, data, nbins)
        _shade_events(self.axes, data)
        instant = decisive_instant(verdict, data.origin_ns)
        if instant is not None and verdict is not None:  # an instant comes from a verdict
            for ax in self.axes:
                ax.add_collection(
                    LineCollection(
                        [[(instant, 0), (instant, 1)]],
                        colors="#d62828",
                        linewidths=1.6,
                        transform=ax.get_xaxis_transform(),
                    ),
                    autolim=False,
                )
            rate_ax.annotate(
                f"decisive: {verdict['name']}",
                (instant, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(3, 2),
                textcoords="offset points",
                color="#d62828",
                fontsize=8,
                va="bottom",
                fontweight="bold",
            )
        for ax in self.axes:
            ax.relim()
            ax.autoscale_view()
            ax.set_xlim(0, data.span_s)
        self.figure.suptitle(title, fontsize=9, x=0.09, ha="left")
        with rc_context(_TEXT):  # type: ignore[arg-type]  # rcParams keys, typed as str here
            self.figure.canvas.draw()
        # The Agg canvas (the backend set above) has buffer_rgba; the base class does not.
        pixels = self.figure.canvas.buffer_rgba()  # type: ignore[attr-defined]
        rgb = Image.frombuffer("RGBA", self.figure.canvas.get_width_height(), pixels).convert("RGB")
        buffer = io.BytesIO()
        rgb.save(buffer, format="png", **PNG_OPTIONS)
        return Plot(
            buffer.getvalue(),
            f"seconds since {data.wall_start or 'the first record'}, "
            f"in bins of {width * 1000:g} ms",
        )

    def _clear(self) -> None:
        for ax in self.axes:
            for artist in [*ax.lines, *ax.patches, *ax.texts, *ax.collections]:
                artist.remove()
            if ax.get_legend() is not None:
                ax.get_legend().remove()
            ax.set_prop_cycle(None)  # the same colours for the same order of lines


@dataclass(frozen=True)
class Plot:
    """One rendered plot: the PNG and what its time axis counts (for the caption)."""

    png: bytes
    time_axis: str


def render(path: Path, verdict: dict | None = None, title: str = "") -> Plot:
    """One plot on a figure of its own (Plotter.render, for one-off use)."""
    return Plotter().render(path, verdict, title)


@dataclass(frozen=True)
class Job:
    """What one plot is drawn from."""

    history: Path
    verdict: dict | None
    title: str


_worker_plotter: Plotter | None = None


def _render_job(job: Job) -> Plot:
    global _worker_plotter
    if _worker_plotter is None:
        _worker_plotter = Plotter()
    return _worker_plotter.render(job.history, job.verdict, job.title)


def render_many(jobs: list[Job], workers: int | None = None) -> list[Plot]:
    """Every job's plot, in order. Drawing text is most of a plot's cost and it is all
    CPU, so with several cores and enough plots they are drawn by worker processes
    (forked: matplotlib is already loaded), each reusing one figure."""
    workers = min(workers or os.cpu_count() or 1, len(jobs) // MIN_JOBS_PER_WORKER or 1)
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [_render_job(job) for job in jobs]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        return list(pool.map(_render_job, jobs, chunksize=max(1, len(jobs) // (workers * 4))))


def _labels(ax, lines) -> None:
    """Name each line in its colour, right of the panel: a legend (handles, boxes, layout)
    costs a third of a plot's time, plain texts a few ms."""
    for row, line in enumerate(lines):
        ax.text(
            1.01,
            1.0 - 0.2 * row,
            line.get_label(),
            transform=ax.transAxes,
            color=line.get_color(),
            fontsize=7,
            va="top",
            ha="left",
        )


def _plot_rates(ax, x, bins, keys, names, width, nbins) -> None:
    rates = _rates(bins, keys, len(names), width, nbins)
    lines = []
    for index, name in sorted(enumerate(names), key=lambda item: item[1]):
        if rates[index].any():
            lines += ax.step(x, rates[index], where="mid", linewidth=1, label=name)
    _labels(ax, lines)


def _plot_errors(ax, x, bins, codes, names, width, nbins) -> None:
    rates = _rates(bins, codes, len(names), width, nbins)
    lines = []
    for index, code in enumerate(names):
        if code != "OK" and rates[index].any():
            lines += ax.step(x, rates[index], where="mid", linewidth=1, label=code)
    if not lines:
        ax.text(
            0.5,
            0.5,
            "no errors",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=8,
            color="#555",
        )
    _labels(ax, lines)


def _plot_latency(ax, x, bins, data: Timeline, nbins) -> None:
    if not data.end.size:
        return
    latency = (data.end - data.start) / 1e6
    lines = []
    for values, name, style in zip(
        _percentiles(bins, latency, nbins), ("p50", "p99", "max"), ("-", "-", ":"), strict=False
    ):
        lines += ax.plot(x, values, style, linewidth=1, label=name)
    _labels(ax, lines)


def _shade_events(axes, data: Timeline) -> None:
    """Fault windows and marks: one collection per panel for all of them (an artist per
    window and panel would cost more than the data)."""
    faults = [e for e in data.events if e["kind"] != "mark"]
    marks = [e for e in data.events if e["kind"] == "mark"]
    seconds = lambda t_ns: (t_ns - data.origin_ns) / 1e9  # noqa: E731
    spans, colours, lines, line_colours, styles = [], [], [], [], []
    for number, event in enumerate(faults):
        colour = _FAULT_COLOURS[number % len(_FAULT_COLOURS)]
        begin = seconds(event["start_ns"])
        end = data.span_s if event["end_ns"] is None else seconds(event["end_ns"])
        end = max(end, begin + data.span_s / 500)  # an instant fault stays visible
        spans.append([(begin, 0), (begin, 1), (end, 1), (end, 0)])
        colours.append(colour)
        if event.get("in_force_ns"):
            lines.append(seconds(event["in_force_ns"]))
            line_colours.append(colour)
            styles.append("--")
        axes[0].text(
            begin,
            0.98 - 0.14 * (number % 4),
            f" {event['kind']} {event['target'] or 'fleet-wide'}",
            transform=axes[0].get_xaxis_transform(),
            fontsize=7,
            va="top",
            color="#333",
            backgroundcolor=colour,
        )
    for mark in marks:
        lines.append(seconds(mark["start_ns"]))
        line_colours.append("#888")
        styles.append(":")
    for ax in axes:
        transform = ax.get_xaxis_transform()  # x in seconds, y from bottom (0) to top (1)
        if spans:
            ax.add_collection(
                PolyCollection(
                    spans, facecolors=colours, alpha=0.25, linewidths=0, transform=transform
                ),
                autolim=False,
            )
        if lines:
            ax.add_collection(
                LineCollection(
                    [[(x, 0), (x, 1)] for x in lines],
                    colors=line_colours,
                    linestyles=styles,
                    linewidths=0.9,
                    transform=transform,
                ),
                autolim=False,
            )
    for mark in marks[:MAX_MARK_LABELS]:
        axes[2].text(
            seconds(mark["start_ns"]),
            0.02,
            " " + str(mark.get("detail", {}).get("label", "")),
            transform=axes[2].get_xaxis_transform(),
            fontsize=6,
            color="#666",
            rotation=90,
            va="bottom",
        )
