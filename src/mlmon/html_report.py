"""``mlmon report``: one self-contained HTML file of charts over a metrics file (the JSON Lines sink's output).

Per model, one chart per metric family over the period the file covers (volume, mean and p95, same-value
ratio, PSI, mean ratio, online logloss, AUC and calibration against offline, reproducibility, training rows
by version, and, when the file has them, the serving inputs and the segments), with the episodes in which
the shipped monitors would fire (:func:`mlmon.assets.evaluate.replay`, as ``mlmon demo`` replays them)
shaded on the charts of the model and metric family they concern, and a table of those episodes.

Library choice: matplotlib, rendering each chart as SVG inlined in the page. The page needs no script and
no network (nothing is fetched: no CDN, no font, no image file), draws as soon as it is parsed, and stays
small: about 0.7 MB for the demo's week of three models (:data:`MAX_POINTS` bounds a line's points whatever
the period). plotly would add zoom and hover, but its JavaScript inlined is about 4 MB per page and the page
draws only once that script has run. matplotlib is an optional extra, ``mlmon[report]`` (a 10 MB wheel,
with Pillow, fontTools, kiwisolver and contourpy about 24 MB of wheels, ~95 MB installed), so that the
agent's own installs (a container, the Datadog Agent's embedded Python) do not carry a plotting stack; the
README's first command installs it, so the demo's first run writes the report. Without it,
:func:`require_matplotlib` raises :class:`MissingExtra`, whose message names the extra.

The page's ids, for tests and links: ``model-<model>`` per model section, ``chart-<model>-<family>`` per
chart (a ``<figure>`` with ``data-model``, ``data-family`` and ``data-episodes``, the number of episodes
shaded on it), ``shade-<model>-<family>-<n>`` per shaded region inside a chart's SVG (``n``: the episode's
row in the table, ``episode-<n>``), ``episodes`` the table. Model names are reduced to ``[A-Za-z0-9_-]``
in ids.
"""

from __future__ import annotations

import html
import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlmon.assets.evaluate import Episode, ShippedMonitor, Status, replay, unsupported
from mlmon.assets.queries import parse_monitor_query
from mlmon.assets.recording import FloatArray, Recording, Series
from mlmon.assets.syntax import Call, Expr, Metric, QueryError, metrics_in
from mlmon.times import iso

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: what ``mlmon report`` and ``mlmon demo`` tell a user without matplotlib
INSTALL_HINT = "pip install 'mlmon[report]'"
#: points of one line at most: past it a line keeps each block's lowest and highest point (a month of
#: 10-minute windows is 4 320 points; a chart is about 600 pixels wide)
MAX_POINTS = 1500
#: a line breaks where two points are more than this many of its usual steps apart (missing windows)
GAP_STEPS = 2.5

_STATUS_COLOURS = {Status.ALERT: "#d62728", Status.NO_DATA: "#7f3fbf", Status.WARN: "#e6a700"}
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")


class MissingExtra(RuntimeError):
    """matplotlib is not installed; the message says which extra brings it."""


class ReportError(ValueError):
    """The metrics file holds nothing to chart (no point and no service check)."""


def require_matplotlib() -> None:
    """Raise :class:`MissingExtra` unless matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MissingExtra(f"the HTML report needs matplotlib, which is not installed: {INSTALL_HINT}") from None


# --- what is charted -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One line of a chart: ``metric``'s series of the model, combined at each timestamp by ``how`` (``sum``,
    ``avg``, ``max``: the monitors' space aggregations); ``split``: one line per value of these tags (a
    feature, a segment value). ``over``: the line is ``metric`` divided by (``op`` ``/``) or less (``-``) that
    metric at the same timestamps, e.g. the offline logloss as online logloss / logloss_vs_offline."""

    metric: str
    label: str
    how: str = "avg"
    split: tuple[str, ...] = ()
    over: str | None = None
    op: str = "/"
    dashed: bool = False


@dataclass(frozen=True)
class Chart:
    """A family: its lines, and ``also``, other metrics or service checks whose monitors are shaded on it."""

    family: str
    title: str
    lines: tuple[Line, ...]
    log: bool = False
    reference: float | None = None
    limits: tuple[float, float] | None = None
    also: tuple[str, ...] = ()
    optional: bool = False  # shown only when some model of the file has data for it (a job or option not everyone runs)

    @property
    def metrics(self) -> frozenset[str]:
        """Every metric or service check name whose monitors concern this chart."""
        names = {line.metric for line in self.lines} | {line.over for line in self.lines if line.over}
        return frozenset(names | set(self.also))


_FEATURE = ("feature",)
_SEGMENT = ("segment", "segment_value")
#: the training chart's family: bars of rows by version, not a time series
TRAINING = "training"
CHARTS: tuple[Chart, ...] = (
    Chart("volume", "Volume: predictions per window", (
        Line("mlmon.prediction.count", "predictions", "sum"),
        Line("mlmon.prediction.invalid_count", "invalid", "sum")), also=("mlmon.predictions.available",)),
    Chart("predictions", "Mean and p95 of the predictions", (
        Line("mlmon.prediction.mean", "mean"), Line("mlmon.prediction.p95", "p95"))),
    Chart("same_value", "Same-value ratio", (Line("mlmon.prediction.same_value_ratio", "same-value ratio", "max"),),
          limits=(0.0, 1.05)),
    Chart("psi", "PSI against the drift reference", (Line("mlmon.prediction.psi", "PSI"),)),
    Chart("mean_ratio", "Mean ratio against the drift reference", (Line("mlmon.prediction.mean_ratio", "mean ratio"),),
          reference=1.0),
    Chart("logloss", "Online logloss and the serving version's offline logloss", (
        Line("mlmon.online.logloss", "online"),
        Line("mlmon.online.logloss", "offline", over="mlmon.online.logloss_vs_offline", dashed=True))),
    Chart("logloss_vs_offline", "Online logloss / offline logloss",
          (Line("mlmon.online.logloss_vs_offline", "logloss vs offline"),), reference=1.0),
    Chart("auc", "Online AUC and the serving version's offline AUC", (
        Line("mlmon.online.auc", "online"),
        Line("mlmon.online.auc", "offline", over="mlmon.online.auc_vs_offline", op="-", dashed=True))),
    Chart("calibration", "Calibration: mean prediction / positive rate",
          (Line("mlmon.online.calibration", "calibration"),), reference=1.0),
    Chart("reproducibility", "Reproducibility rate", (Line("mlmon.reproducibility.rate", "reproduced"),),
          limits=(0.0, 1.05)),
    Chart(TRAINING, "Training rows by version", (Line("mlmon.training.rows", "rows"),), also=(
        "mlmon.training.rows_change_prev", "mlmon.training.rows_change_30d", "mlmon.training.valid_logloss_change_prev",
        "mlmon.training.model_age_hours", "mlmon.training.feature.distinct_count")),
    Chart("serving_nulls", "Serving inputs: NULL ratio (solid) and same-value ratio (dashed) by feature", (
        Line("mlmon.serving.feature.null_ratio", "null", "max", _FEATURE),
        Line("mlmon.serving.feature.same_value_ratio", "same value", "max", _FEATURE, dashed=True)),
          limits=(0.0, 1.05), optional=True),
    Chart("serving_skew", "Serving inputs: PSI against the training data by feature",
          (Line("mlmon.serving.feature.psi_training", "PSI", "max", _FEATURE),), log=True, optional=True),
    Chart("segment_auc", "Segments: AUC minus the model's",
          (Line("mlmon.segment.online.auc_vs_model", "", "avg", _SEGMENT),), reference=0.0, optional=True),
    Chart("segment_calibration", "Segments: calibration / the model's",
          (Line("mlmon.segment.online.calibration_vs_model", "", "avg", _SEGMENT),), reference=1.0, optional=True),
)


# --- the data: series per model ------------------------------------------------------------------


def _tag_values(tags: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for tag in tags:
        key, sep, value = tag.partition(":")
        if sep:
            out.setdefault(key, value)
    return out


@dataclass
class _Index:
    """The recording's series by metric, then model: ``(tags as a dict, series)``."""

    by_metric: dict[str, dict[str, list[tuple[dict[str, str], Series]]]] = field(default_factory=dict)
    models: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, recording: Recording) -> _Index:
        index = cls()
        for series in recording.series.values():
            tags = _tag_values(series.tags)
            model = tags.get("model")
            if model is None or not series.times.size:
                continue
            index.by_metric.setdefault(series.metric, {}).setdefault(model, []).append((tags, series))
        charted = {line.metric for chart in CHARTS for line in chart.lines}
        index.models = {m for metric in charted for m in index.by_metric.get(metric, {})}
        for checks in recording.checks_of("mlmon.predictions.available"):
            model = _tag_values(checks.tags).get("model")
            if model is not None:
                index.models.add(model)
        return index

    def of_model(self, metric: str, model: str) -> list[tuple[dict[str, str], Series]]:
        return self.by_metric.get(metric, {}).get(model, [])


def _combine(series: Sequence[Series], how: str) -> tuple[FloatArray, FloatArray]:
    """One value per timestamp of any of ``series``: their sum, average or maximum there."""
    if not series:
        return np.zeros(0), np.zeros(0)
    times, inverse = np.unique(np.concatenate([s.times for s in series]), return_inverse=True)
    values = np.concatenate([s.values for s in series])
    if how == "sum":
        return times, np.bincount(inverse, weights=values, minlength=times.size).astype(np.float64)
    if how == "max":
        out = np.full(times.size, -np.inf)
        np.maximum.at(out, inverse, values)
        return times, out
    return times, np.bincount(inverse, weights=values, minlength=times.size) / np.bincount(inverse)


def _line_data(index: _Index, model: str, line: Line) -> list[tuple[str, FloatArray, FloatArray]]:
    """``(label, times, values)`` per line drawn for ``line`` (one per split value, sorted)."""
    groups: dict[str, list[Series]] = {}
    for tags, series in index.of_model(line.metric, model):
        key = "=".join(tags.get(t, "N/A") for t in line.split) if line.split else line.label
        groups.setdefault(key, []).append(series)
    out = []
    for key in sorted(groups):
        times, values = _combine(groups[key], line.how)
        if line.over is not None:
            bt, bv = _combine([s for _, s in index.of_model(line.over, model)], line.how)
            times, ia, ib = np.intersect1d(times, bt, assume_unique=True, return_indices=True)
            values = values[ia] / bv[ib] if line.op == "/" else values[ia] - bv[ib]
            keep = np.isfinite(values)
            times, values = times[keep], values[keep]
        if times.size:
            label = f"{key} {line.label}".strip() if line.split and line.label else key
            out.append((label, times, values))
    return out


def _envelope(times: FloatArray, values: FloatArray, limit: int = MAX_POINTS) -> tuple[FloatArray, FloatArray]:
    """At most ``limit`` points: past it, each block of consecutive points keeps its lowest and highest (in time
    order), so that a spike or a drop to 0 survives."""
    if times.size <= limit:
        return times, values
    block = math.ceil(times.size / (limit // 2))
    rows = math.ceil(times.size / block)
    padded = np.full(rows * block, np.nan)
    padded[:times.size] = values
    grid = padded.reshape(rows, block)
    lo, hi = np.nanargmin(grid, axis=1), np.nanargmax(grid, axis=1)
    base = np.arange(rows) * block
    picks = np.unique(np.concatenate([base + lo, base + hi]))
    return times[picks], values[picks]


def _with_gaps(times: FloatArray, values: FloatArray) -> tuple[FloatArray, FloatArray]:
    """A NaN inserted where points are more than :data:`GAP_STEPS` usual steps apart, so that the line breaks."""
    if times.size < 3:
        return times, values
    steps = np.diff(times)
    breaks = np.nonzero(steps > GAP_STEPS * float(np.median(steps)))[0]
    if not breaks.size:
        return times, values
    middles = (times[breaks] + times[breaks + 1]) / 2
    return np.insert(times, breaks + 1, middles), np.insert(values, breaks + 1, np.nan)


# --- the monitors: which chart, which threshold ----------------------------------------------------


@dataclass(frozen=True)
class _MonitorInfo:
    name: str
    title: str
    names: frozenset[str]  # metrics of its query, or its service check
    thresholds: tuple[float, ...]  # where its critical threshold falls on the charted metric, when known


def _invert(expr: Expr, threshold: float) -> tuple[float, ...]:
    """The values of the metric at which ``expr`` equals ``threshold``: the metric itself, ``log2``/``log10`` of
    it, ``abs`` of those. Anything else (arithmetic of two metrics): none."""
    if isinstance(expr, Metric):
        return (threshold,)
    if isinstance(expr, Call) and len(expr.args) == 1:
        if expr.name == "abs":
            return tuple(v for t in (threshold, -threshold) for v in _invert(expr.args[0], t))
        if expr.name in ("log2", "log10"):
            return _invert(expr.args[0], (2.0 if expr.name == "log2" else 10.0) ** threshold)
    return ()


def _monitor_info(monitor: ShippedMonitor) -> _MonitorInfo | None:
    definition = monitor.definition
    query, kind = definition.get("query"), definition.get("type")
    if not isinstance(query, str) or not isinstance(kind, str):
        return None
    try:
        parsed = parse_monitor_query(query, kind)
    except QueryError:
        return None
    title = str(definition.get("name", monitor.name))
    if parsed.kind == "service_check":
        return _MonitorInfo(monitor.name, title, frozenset({parsed.check or ""}), ())
    assert parsed.expression is not None
    names = frozenset(m.name for m in metrics_in(parsed.expression))
    thresholds = () if parsed.threshold is None or parsed.change else _invert(parsed.expression, parsed.threshold)
    return _MonitorInfo(monitor.name, title, names, thresholds)


@dataclass(frozen=True)
class EpisodeRow:
    """An episode of the table: its number (``episode-<n>``), model (None: not a model's, e.g. by instance) and
    the families it is shaded on for that model."""

    number: int
    episode: Episode
    title: str
    model: str | None
    families: tuple[str, ...]


# --- the page ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """The page and what it holds: ``charts`` are ``(model, family)`` pairs in page order."""

    html: str
    models: tuple[str, ...]
    charts: tuple[tuple[str, str], ...]
    episodes: tuple[EpisodeRow, ...]
    skipped_monitors: Mapping[str, str]


def slug(text: str) -> str:
    """``text`` reduced to the characters of an id (``[A-Za-z0-9_-]``, others as ``-``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", text) or "-"


def plotted(chart: Chart) -> frozenset[str]:
    """The metrics ``chart`` draws as they are (a monitor on one of them has its threshold drawn)."""
    return frozenset(line.metric for line in chart.lines if line.over is None)


def build_report(recording: Recording, monitors: Sequence[ShippedMonitor], step: float = 600.0,
                 source: str = "") -> Report:
    """The report of ``recording``: charts per model, the episodes of ``monitors`` replayed every ``step``
    seconds over the file's period. Raises :class:`ReportError` for a recording without any point,
    :class:`MissingExtra` without matplotlib."""
    require_matplotlib()
    if recording.start is None or recording.end is None:
        raise ReportError(f"{source or 'the metrics file'}: no metric points or service checks")
    start, end = recording.start, recording.end
    index = _Index.of(recording)
    models = tuple(sorted(index.models))
    charts = [c for c in CHARTS if not c.optional
              or any(index.of_model(line.metric, m) for line in c.lines for m in models)]
    skipped = unsupported(monitors)
    supported = [m for m in monitors if m.name not in skipped]
    infos = {m.name: info for m in supported if (info := _monitor_info(m)) is not None}
    episodes = [e for e in replay(supported, recording, start, end, step) if e.status is not Status.WARN]
    rows = []
    for number, episode in enumerate(episodes, start=1):
        info = infos.get(episode.monitor)
        model = dict(episode.group).get("model")
        families = tuple(c.family for c in charts if info is not None and info.names & c.metrics) if model else ()
        rows.append(EpisodeRow(number, episode, info.title if info else episode.monitor, model, families))
    sections, pairs = [], []
    for model in models:
        figures = []
        for chart in charts:
            shaded = [row for row in rows if row.model == model and chart.family in row.families]
            thresholds = sorted({t for i in infos.values() if i.names <= plotted(chart) for t in i.thresholds})
            svg = _render(chart, index, model, shaded, thresholds, start, end, step)
            chart_id = f"chart-{slug(model)}-{chart.family}"
            note = _training_note(index, model) if chart.family == TRAINING else ""
            note = f'<br><span class="note">{html.escape(note)}</span>' if note else ""
            figures.append(
                f'<figure id="{chart_id}" data-model="{html.escape(model)}" data-family="{chart.family}" '
                f'data-episodes="{len(shaded)}"><figcaption>{html.escape(chart.title)}'
                f'{_shaded_caption(shaded)}{note}</figcaption>{svg}</figure>')
            pairs.append((model, chart.family))
        sections.append(f'<section class="model" id="model-{slug(model)}"><h2>{html.escape(model)}</h2>'
                        f'<div class="grid">{"".join(figures)}</div></section>')
    page = _page(source, start, end, step, models, rows, skipped, len(supported), "".join(sections))
    return Report(page, models, tuple(pairs), tuple(rows), skipped)


def write_report(metrics: str | Path, out: str | Path, monitors: Sequence[ShippedMonitor],
                 step: float = 600.0) -> Report:
    """Read ``metrics`` (JSON Lines), write the report to ``out``; raises as :func:`build_report` and
    :class:`~mlmon.assets.recording.RecordingError`."""
    require_matplotlib()
    report = build_report(Recording.load(metrics), monitors, step, str(metrics))
    Path(out).write_text(report.html, encoding="utf-8")
    return report


def _shaded_caption(rows: Sequence[EpisodeRow]) -> str:
    if not rows:
        return ""
    names = sorted({row.episode.monitor for row in rows})
    return f' <span class="fires">fires: {html.escape(", ".join(names))}</span>'


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes / 60
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} d"


def _page(source: str, start: float, end: float, step: float, models: Sequence[str], rows: Sequence[EpisodeRow],
          skipped: Mapping[str, str], supported: int, sections: str) -> str:
    table = []
    for row in rows:
        e = row.episode
        links = ", ".join(f'<a href="#chart-{slug(row.model or "")}-{f}">{f}</a>' for f in row.families) or (
            "not a model's" if row.model is None else "no chart")
        worst = "-" if e.worst_value is None else f"{e.worst_value:.4g}"
        table.append(
            f'<tr id="episode-{row.number}" class="{slug(e.status.value)}"><td>{row.number}</td>'
            f'<td title="{html.escape(row.title)}">{html.escape(e.monitor)}</td>'
            f'<td class="group">{html.escape(e.group_name.replace(",", ", "))}</td>'
            f"<td>{html.escape(e.status.value)}</td>"
            f'<td class="time">{iso(e.first)}</td><td class="time">{iso(e.last)}</td>'
            f'<td class="time">{_duration(e.last - e.first + step)}</td><td>{worst}</td><td>{links}</td></tr>')
    episodes = ("<table id=\"episodes\"><thead><tr><th>#</th><th>monitor</th><th>group</th><th>status</th>"
                "<th>first evaluation</th><th>last evaluation</th><th>about</th><th>worst value</th><th>charts</th>"
                f"</tr></thead><tbody>{''.join(table)}</tbody></table>" if rows
                else '<p id="episodes">No shipped monitor would have fired.</p>')
    notes = "".join(f"<li>{html.escape(name)}: {html.escape(reason)}</li>" for name, reason in sorted(skipped.items()))
    nav = " · ".join(f'<a href="#model-{slug(m)}">{html.escape(m)}</a>' for m in models)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>mlmon report {iso(start)} to {iso(end)}</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; margin: 1.2em 2em; color: #222; }}
h1 {{ font-size: 1.4em; margin-bottom: 0.2em; }} h2 {{ font-size: 1.2em; border-bottom: 1px solid #ccc; }}
p.meta {{ color: #555; margin-top: 0; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
th, td {{ padding: 2px 8px; border-bottom: 1px solid #e4e4e4; text-align: left; vertical-align: top; }}
td.time {{ white-space: nowrap; }} td.group {{ overflow-wrap: anywhere; }}
tr.ALERT td:nth-child(4) {{ color: #d62728; font-weight: 600; }} tr.NO-DATA td:nth-child(4) {{ color: #7f3fbf; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 10px 18px; }}
figure {{ margin: 0; }} figure svg {{ width: 100%; height: auto; display: block; }}
figcaption {{ font-size: 0.85em; font-weight: 600; }} .fires {{ color: #d62728; font-weight: normal; }}
.note {{ color: #555; font-weight: normal; }}
</style></head><body>
<h1>mlmon report</h1>
<p class="meta">{html.escape(source)}: {iso(start)} to {iso(end)} (UTC), {len(models)} model(s): {nav}.
Shaded: where a shipped monitor would fire ({supported} monitors replayed every {step:g} s; red ALERT, purple NO DATA),
on the charts of the model and metric family it concerns; dashed red lines are their critical thresholds.</p>
<h2>Monitors that would have fired</h2>
{episodes}
{f"<p>Not evaluated:</p><ul>{notes}</ul>" if notes else ""}
{sections}
</body></html>
"""


# --- drawing -------------------------------------------------------------------------------------


def _render(chart: Chart, index: _Index, model: str, shaded: Sequence[EpisodeRow], thresholds: Sequence[float],
            start: float, end: float, step: float) -> str:
    import matplotlib
    from matplotlib.figure import Figure

    salt = f"{slug(model)}-{chart.family}"
    # text as <text> (not glyph paths), ids salted per chart so that several SVGs in one page never share one
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt, "font.size": 8,
                                "font.sans-serif": ["DejaVu Sans", "Arial"],
                                "axes.spines.top": False, "axes.spines.right": False}):
        # fixed margins (inches), not a layout engine: constrained layout draws each chart twice over, the
        # report's main cost; tick labels are kept short (1.2M, 0.0001) to fit the left one
        width, height, bottom = 6.4, 2.3, 0.5 if chart.family == TRAINING else 0.36
        fig = Figure(figsize=(width, height))
        fig.subplots_adjust(left=0.55 / width, right=1 - 0.12 / width, bottom=bottom / height, top=1 - 0.08 / height)
        ax = fig.add_subplot()
        if chart.family == TRAINING:
            _draw_training(ax, index, model)
        else:
            _draw_lines(ax, chart, index, model, thresholds, start, end)
        _draw_episodes(ax, chart, model, shaded, start, end, step)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return _tidy_svg(buffer.getvalue())


def _draw_lines(ax: Axes, chart: Chart, index: _Index, model: str, thresholds: Sequence[float],
                start: float, end: float) -> None:
    import matplotlib.dates as mdates

    colours: dict[str, str] = {}
    drawn = 0
    for number, line in enumerate(chart.lines):
        for label, times, values in _line_data(index, model, line):
            if chart.log:
                times, values = times[values > 0], values[values > 0]
            times, values = _with_gaps(*_envelope(times, values))
            key = label.split(" ")[0] if line.split else str(number)
            colour = colours.setdefault(key, _PALETTE[len(colours) % len(_PALETTE)])
            ax.plot(_dates(times), values, color=colour, linewidth=0.9, linestyle="--" if line.dashed else "-",
                    label=label, marker="." if times.size < 30 else None, markersize=3)
            drawn += 1
    if chart.log:
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10.0, numticks=6))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    if chart.reference is not None:
        ax.axhline(chart.reference, color="#999999", linewidth=0.7, linestyle=":")
    for threshold in thresholds:
        if not chart.log or threshold > 0:
            ax.axhline(threshold, color="#d62728", linewidth=0.8, linestyle="--", alpha=0.8)
    if chart.limits is not None:
        ax.set_ylim(*chart.limits)
    ax.set_xlim(_dates(np.array([start]))[0], _dates(np.array([end]))[0])
    locator = mdates.AutoDateLocator(maxticks=8)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ax.grid(True, color="#eeeeee", linewidth=0.6)
    if not drawn:
        ax.text(0.5, 0.5, "no data in this period", transform=ax.transAxes, ha="center", va="center", color="#888888")
    elif drawn > 1 or chart.lines[0].split:
        ax.legend(loc="upper left", fontsize=6.5, ncol=min(drawn, 4), frameon=True, framealpha=0.75,
                  borderpad=0.3, handlelength=1.5, columnspacing=1.0)


def _training_versions(index: _Index, model: str) -> dict[str, tuple[float, float]]:
    """Version -> (first time seen, last ``mlmon.training.rows``), oldest first (the last one is the latest)."""
    versions: dict[str, tuple[float, float]] = {}
    for tags, series in index.of_model("mlmon.training.rows", model):
        version = tags.get("model_version", "?")
        first, _ = versions.get(version, (float(series.times[0]), 0.0))
        versions[version] = (min(first, float(series.times[0])), float(series.values[-1]))
    return dict(sorted(versions.items(), key=lambda item: (item[1][0], item[0])))


def _latest(index: _Index, model: str, metric: str, version: str) -> float | None:
    """The last value of ``metric`` for ``version`` of ``model`` (None: not in the file)."""
    found = [(float(s.times[-1]), float(s.values[-1])) for tags, s in index.of_model(metric, model)
             if tags.get("model_version") == version]
    return max(found)[1] if found else None


def _training_note(index: _Index, model: str) -> str:
    """The latest version's offline numbers, for the training chart's caption ("" without training metrics)."""
    versions = _training_versions(index, model)
    if not versions:
        return ""
    latest = list(versions)[-1]
    notes = []
    logloss = _latest(index, model, "mlmon.training.valid_logloss", latest)
    change = _latest(index, model, "mlmon.training.valid_logloss_change_prev", latest)
    if logloss is not None:
        notes.append(f"valid logloss {logloss:.4g}" + ("" if change is None else f" ({change:+.1%} vs previous)"))
    auc = _latest(index, model, "mlmon.training.valid_auc", latest)
    if auc is not None:
        notes.append(f"valid AUC {auc:.3f}")
    age = _latest(index, model, "mlmon.training.model_age_hours", latest)
    if age is not None:
        notes.append(f"trained {age:.1f} h before its last snapshot")
    collapsed = sorted(tags.get("feature", "?") for tags, s in index.of_model("mlmon.training.feature.distinct_count",
                                                                               model)
                       if tags.get("model_version") == latest and s.values[-1] < 2)
    if collapsed:
        notes.append(f"one value only: {', '.join(collapsed)}")
    return f"latest {latest}: " + "; ".join(notes) if notes else f"latest {latest}"


def _draw_training(ax: Axes, index: _Index, model: str) -> None:
    """Bars: the rows of each version the file has ``mlmon.training.rows`` for (its last value), and the previous
    version's and the ~30-days-earlier version's, derived from the latest one's ``rows_change_*``."""
    versions = _training_versions(index, model)
    if not versions:
        ax.text(0.5, 0.5, "no training metrics in this period", transform=ax.transAxes, ha="center", va="center",
                color="#888888")
        ax.set_xticks([])
        ax.set_yticks([])
        return
    latest = list(versions)[-1]
    labels, heights, derived = [], [], []
    for name, metric in (("~30 days earlier", "mlmon.training.rows_change_30d"),
                         ("previous", "mlmon.training.rows_change_prev")):
        change = _latest(index, model, metric, latest)
        if change is not None and change > -1:
            labels.append(f"{name}\n(from {metric.rsplit('.', 1)[1]})")
            heights.append(versions[latest][1] / (1 + change))
            derived.append(True)
    for version, (_, rows) in versions.items():
        labels.append(version + ("\n(latest)" if version == latest else ""))
        heights.append(rows)
        derived.append(False)
    bars = ax.bar(range(len(labels)), heights, color=["#c6dbef" if d else "#1f77b4" for d in derived], width=0.6)
    ax.bar_label(bars, labels=[f"{h:,.0f}" for h in heights], fontsize=7, padding=2)
    ax.set_xticks(range(len(labels)), labels, fontsize=7)
    ax.set_ylim(0, max(heights) * 1.5)  # room above the bars for the monitors' names
    ax.yaxis.set_major_formatter(_thousands())


def _thousands() -> Any:
    """Tick labels 250k, 1.2M: short enough for the fixed left margin."""
    from matplotlib.ticker import FuncFormatter

    def label(value: float, _: object) -> str:
        return f"{value / 1e6:g}M" if value >= 1e6 else f"{value / 1e3:g}k" if value else "0"

    return FuncFormatter(label)


def _draw_episodes(ax: Axes, chart: Chart, model: str, shaded: Sequence[EpisodeRow], start: float, end: float,
                   step: float) -> None:
    from matplotlib.patches import Rectangle
    from matplotlib.transforms import blended_transform_factory

    if chart.family == TRAINING:  # no time axis: the whole chart is tinted, the monitors named
        for i, row in enumerate(shaded):
            colour = _STATUS_COLOURS.get(row.episode.status, "#d62728")
            ax.add_patch(Rectangle((0, 0), 1, 1, transform=ax.transAxes, facecolor=colour, alpha=0.06,
                                   edgecolor=colour, linewidth=1.2, gid=f"shade-{slug(model)}-{chart.family}-"
                                   f"{row.number}", zorder=0))
            ax.text(0.01, 0.97 - 0.09 * i, f"{row.episode.monitor}: {row.episode.status.value}",
                    transform=ax.transAxes, ha="left", va="top", fontsize=7, color=colour)
        return
    across = blended_transform_factory(ax.transData, ax.transAxes)
    for row in shaded:
        e = row.episode
        lo, hi = e.first, max(e.last, e.first + step)
        if hi > end:
            lo, hi = max(start, min(lo, end - step)), end
        colour = _STATUS_COLOURS.get(e.status, "#d62728")
        left, right = _dates(np.array([lo, hi]))
        ax.axvspan(left, right, color=colour, alpha=0.16, linewidth=0,
                   gid=f"shade-{slug(model)}-{chart.family}-{row.number}", zorder=0)
        detail = "=".join(value for tag, value in e.group if tag != "model")
        label = f"{e.monitor} ({detail})" if detail else e.monitor
        late = lo > start + 0.75 * (end - start)  # near the right edge: the label runs leftwards from the span's end
        ax.text(right if late else left, 0.99, f"{row.number}: {label} " if late else f" {row.number}: {label}",
                transform=across, fontsize=6, color=colour, va="top", ha="right" if late else "left", clip_on=True)


def _dates(times: FloatArray) -> Any:
    """Unix seconds as datetime64 (matplotlib draws them in UTC)."""
    return np.round(times).astype("int64").astype("datetime64[s]")


_FLOAT = re.compile(r"(\d+\.\d)\d+")
_COORDINATES = re.compile(r'( (?:d|x|y)="[^"]*")')
#: matplotlib's ids of groups (figure_1, axes_1, line2d_3, ...), the same in every chart: dropped, so that the
#: page's ids are unique (the salted ids of clip paths and markers, and the shaded regions', stay)
_GENERIC_ID = re.compile(r'<g id="(?!shade-)[^"]*">')


def _tidy_svg(svg: str) -> str:
    """matplotlib's SVG made fit for inlining: no XML prolog, DOCTYPE or metadata, no repeated group ids;
    coordinates to 1 decimal (a tenth of a point, below a pixel; matplotlib writes 6)."""
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.DOTALL)
    svg = _GENERIC_ID.sub("<g>", svg)
    return _COORDINATES.sub(lambda m: _FLOAT.sub(r"\1", m.group(1)), svg)
