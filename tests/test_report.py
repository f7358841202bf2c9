"""``mlmon report``: the HTML page of charts over a metrics file, on a small run of the agent.

The warehouse is the incident suite's healthy traffic (30 hours, three models) with one incident planted:
``ctr_banner``'s predictions shifted upward for the last two hours, which fires ``predictions_shifted`` and
``predictions_mean_shifted`` (and, once labels mature, ``online_miscalibrated``) on ``ctr_banner`` only. The
agent runs once over it into JSON Lines, and ``mlmon report`` is run on that file (once, for the module).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlmon.assets.evaluate import Status, load_monitors, replay
from mlmon.assets.recording import Recording
from mlmon.cli import main
from mlmon.config import parse_config
from mlmon.html_report import CHARTS, MAX_POINTS, _envelope, _with_gaps
from mlmon.runner import Agent
from mlmon.scenarios import HOUR, MODELS, Incident, build_frames, write_duckdb
from mlmon.sinks.jsonl import JsonlSink

ROOT = Path(__file__).resolve().parents[1]
#: a weekday afternoon, 3 minutes past a window boundary (as the incident suite)
END = dt.datetime(2026, 11, 20, 14, 3, tzinfo=dt.timezone.utc).timestamp()
INCIDENT = Incident("shifted", "ctr_banner", since=2 * HOUR)
SICK = "ctr_banner"
HEALTHY = [m.name for m in MODELS if m.name != SICK]
#: the families every chart set has (the run sends serving features and segments, so the optional ones too)
FAMILIES = [chart.family for chart in CHARTS]


@dataclass(frozen=True)
class Run:
    metrics: Path
    out: Path
    code: int
    stdout: str
    stderr: str

    @property
    def html(self) -> str:
        return self.out.read_text(encoding="utf-8")


def _main(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    directory = tmp_path_factory.mktemp("report")
    warehouse, metrics = directory / "warehouse.duckdb", directory / "metrics.jsonl"
    write_duckdb(warehouse, build_frames(END, (INCIDENT,), hours=30))
    config = parse_config({
        "init_config": {"env": "test", "state_dir": str(directory / "state"), "datadog": {"transport": "jsonl"}},
        "instances": [{
            "name": "report",
            "warehouse": {"engine": "duckdb", "path": str(warehouse)},
            "jobs": {
                "predictions": {"initial_lookback": "6h", "segment_by": ["placement"]},
                "quality": {"initial_lookback": "6h", "label_delay": "1h", "segment_by": ["placement"]},
                "reproducibility": {"initial_lookback": "6h"},
                "training": {"features": ["age", "device", "bid_floor"]},
                "serving_features": {"initial_lookback": "6h", "features": ["age", "device", "bid_floor"],
                                     "categorical": ["device"]},
            },
        }],
    }, "test_report")
    Agent(config, JsonlSink(metrics), clock=lambda: END).run_once()
    out = directory / "report.html"
    code, stdout, stderr = _main("report", "--metrics", str(metrics), "--out", str(out), "--root", str(ROOT))
    return Run(metrics, out, code, stdout, stderr)


def _figures(page: str) -> dict[str, str]:
    """Chart id -> its <figure> element."""
    return {m.group(1): m.group(0) for m in re.finditer(r'<figure id="([^"]+)".*?</figure>', page, re.DOTALL)}


def _episode_rows(page: str) -> dict[int, list[str]]:
    """Episode number -> the cells of its table row (text, tags stripped)."""
    rows = {}
    for m in re.finditer(r'<tr id="episode-(\d+)"[^>]*>(.*?)</tr>', page, re.DOTALL):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", m.group(2))
        rows[int(m.group(1))] = [re.sub(r"<[^>]+>", "", cell) for cell in cells]
    return rows


def test_cli_writes_the_report(run: Run) -> None:
    assert run.code == 0, run.stderr
    assert run.stdout.startswith(f"report {run.out}: 3 model(s), {3 * len(FAMILIES)} chart(s), ")
    assert run.out.stat().st_size < 1_000_000  # 6 hours of three models: it opens at once


def test_the_page_is_self_contained(run: Run) -> None:
    """Nothing is fetched when it opens: no script, no stylesheet or image by URL, only in-page references."""
    page = run.html
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower() and "<link" not in page.lower() and "@import" not in page
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.IGNORECASE)
    assert not re.search(r"url\(\s*['\"]?(?:https?:)?//", page, re.IGNORECASE)
    assert not re.search(r"<img\b", page, re.IGNORECASE)
    # every link and SVG reference points into the page, at an id it has
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "ids are unique across the inlined SVGs"
    targets = re.findall(r'(?:xlink:)?href="#([^"]+)"', page) + re.findall(r'url\(#([^)]+)\)', page)
    assert targets and set(targets) <= set(ids)


def test_one_chart_per_model_and_family(run: Run) -> None:
    page = run.html
    figures = _figures(page)
    assert list(figures) == [f"chart-{model}-{family}" for model in sorted(m.name for m in MODELS)
                             for family in FAMILIES]
    for chart in CHARTS:
        for model in (m.name for m in MODELS):
            figure = figures[f"chart-{model}-{chart.family}"]
            assert f'data-model="{model}" data-family="{chart.family}"' in figure
            assert f"<figcaption>{chart.title}" in figure.replace("&#x27;", "'")
            assert figure.count("<svg") == 1
    for model in (m.name for m in MODELS):
        assert f'<section class="model" id="model-{model}"><h2>{model}</h2>' in page
    # the charts of this run have data (segments: the two busiest placements have enough labels)
    for family in FAMILIES:
        assert "no data in this period" not in figures[f"chart-{SICK}-{family}"], family
    # training: bars of the latest version (the snapshot's) and the ones its rows_change_* point back to
    training = figures[f"chart-{SICK}-training"]
    assert "(latest)" in training and "(from rows_change_prev)" in training and "(from rows_change_30d)" in training
    assert re.search(r'<span class="note">latest v\d{8}: valid logloss 0\.\d+ \([+-]\d+\.\d% vs previous\)', training)


def test_the_incident_is_shaded_on_its_models_charts_only(run: Run) -> None:
    page = run.html
    figures = _figures(page)
    rows = _episode_rows(page)
    shifted = [n for n, cells in rows.items() if cells[1] == "predictions_shifted"]
    mean_shifted = [n for n, cells in rows.items() if cells[1] == "predictions_mean_shifted"]
    assert shifted and mean_shifted
    for family, numbers in (("psi", shifted), ("mean_ratio", mean_shifted)):
        figure = figures[f"chart-{SICK}-{family}"]
        for number in numbers:
            assert f'id="shade-{SICK}-{family}-{number}"' in figure
        assert 'data-episodes="0"' not in figure
    # not on the sick model's unrelated charts (each monitor on its family), never on the healthy models'
    assert 'id="shade-' not in figures[f"chart-{SICK}-same_value"]
    assert 'id="shade-' not in figures[f"chart-{SICK}-reproducibility"]
    assert f'id="shade-{SICK}-psi-{mean_shifted[0]}"' not in figures[f"chart-{SICK}-psi"]
    for model in HEALTHY:
        for family in FAMILIES:
            figure = figures[f"chart-{model}-{family}"]
            assert 'id="shade-' not in figure and 'data-episodes="0"' in figure, (model, family)


def test_the_episode_table_lists_the_replayed_episodes(run: Run) -> None:
    """The table holds the episodes `replay` finds over the file (firing ones: ALERT and NO DATA), every one
    on the sick model, each linked to the charts it is shaded on."""
    page = run.html
    assert '<table id="episodes">' in page
    rows = _episode_rows(page)
    recording = Recording.load(run.metrics)
    assert recording.start is not None and recording.end is not None
    episodes = [e for e in replay(load_monitors(ROOT), recording, recording.start, recording.end, 600)
                if e.status is not Status.WARN]
    assert [(cells[1], cells[2].replace(", ", ","), cells[3]) for cells in rows.values()] == [
        (e.monitor, e.group_name, e.status.value) for e in episodes]
    assert list(rows) == list(range(1, len(rows) + 1))
    assert {cells[2] for cells in rows.values()} == {f"model:{SICK}"}
    number = next(n for n, cells in rows.items() if cells[1] == "predictions_shifted")
    row = re.search(rf'<tr id="episode-{number}".*?</tr>', page, re.DOTALL)
    assert row is not None and f'<a href="#chart-{SICK}-psi">psi</a>' in row.group(0)
    assert rows[number][3] == "ALERT"


def test_a_missing_metrics_file_fails_clearly(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    code, stdout, stderr = _main("report", "--metrics", str(tmp_path / "nothing.jsonl"), "--out", str(out))
    assert code == 1 and stdout == ""
    assert f"{tmp_path / 'nothing.jsonl'}: cannot read" in stderr
    assert not out.exists()


def test_an_empty_metrics_file_fails_clearly(tmp_path: Path) -> None:
    metrics, out = tmp_path / "metrics.jsonl", tmp_path / "report.html"
    metrics.write_text("\n")
    code, stdout, stderr = _main("report", "--metrics", str(metrics), "--out", str(out))
    assert code == 1 and stdout == ""
    assert stderr == f"mlmon: {metrics}: no metric points or service checks\n"
    assert not out.exists()


def test_a_bad_every_is_a_usage_error(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text('{"metric": "mlmon.prediction.count", "points": [[1, 2]], "tags": ["model:a"]}\n')
    code, _, stderr = _main("report", "--metrics", str(metrics), "--out", str(tmp_path / "r.html"), "--every", "0")
    assert code == 2 and "--every" in stderr


def test_without_matplotlib_the_command_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`mlmon report` exits 2 naming the extra; `mlmon demo` writes no report and says how to get one."""
    from mlmon.cli.demo import _demo_report

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    metrics, out = tmp_path / "metrics.jsonl", tmp_path / "report.html"
    metrics.write_text('{"metric": "mlmon.prediction.count", "points": [[1, 2]], "tags": ["model:a"]}\n')
    code, stdout, stderr = _main("report", "--metrics", str(metrics), "--out", str(out))
    assert (code, stdout) == (2, "")
    assert "matplotlib" in stderr and "pip install 'mlmon[report]'" in stderr
    out.write_text("an earlier run's report")
    assert _demo_report(metrics, out) == ("report: not written, matplotlib is not installed "
                                          "(pip install 'mlmon[report]', then mlmon demo again)")
    assert not out.exists()


def test_long_lines_keep_their_spikes_and_break_at_gaps() -> None:
    """A month of 10-minute windows is drawn from at most MAX_POINTS points, the one spike and the one drop kept;
    missing windows break the line."""
    import numpy as np

    times = np.arange(30 * 144, dtype=np.float64) * 600
    values = np.ones_like(times)
    values[1234], values[3000] = 50.0, 0.0
    kept_times, kept = _envelope(times, values)
    assert kept_times.size <= MAX_POINTS and kept.max() == 50.0 and kept.min() == 0.0
    assert np.all(np.diff(kept_times) > 0)
    gappy = np.delete(times[:100], range(40, 50))
    broken_times, broken = _with_gaps(gappy, np.ones_like(gappy))
    assert np.isnan(broken).sum() == 1 and np.isnan(broken[40])
    assert broken_times[39] < broken_times[40] < broken_times[41]


def test_the_demo_writes_its_report_next_to_its_metrics(tmp_path: Path) -> None:
    """What `mlmon demo` prints last: the report's path (here on a one-series file, to be quick)."""
    from mlmon.cli.demo import _demo_report

    metrics, out = tmp_path / "metrics.jsonl", tmp_path / "report.html"
    metrics.write_text('{"metric": "mlmon.prediction.count", "points": [[1800000000, 2], [1800000600, 3]], '
                       '"tags": ["model:a"]}\n')
    assert _demo_report(metrics, out) == f"report: {out} (1 model(s), 0 monitor episode(s); open it in a browser)"
    assert '<figure id="chart-a-volume"' in out.read_text(encoding="utf-8")
