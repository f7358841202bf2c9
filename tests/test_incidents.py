"""The incident suite: the agent runs over a warehouse per incident, then the shipped monitors are evaluated
on what it wrote. Each incident fires exactly its monitor(s) for the right model (feature, segment value),
and the healthy baseline fires nothing.

Every warehouse is the same healthy 30 hours of traffic (same seed, so the same rows) with one
incident planted, evaluated at a fixed afternoon time so the result is deterministic. Some incidents
rightly fire a second monitor; each such consequence is listed with the reason. The agent slices the
predictions and quality jobs by the prediction log's ``placement`` (``segment_by``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlmon.assets.evaluate import Status, evaluate, load_monitors
from mlmon.assets.recording import Recording
from mlmon.config import parse_config
from mlmon.runner import Agent
from mlmon.scenarios import DAY, EXTRA_MODELS, HOUR, MODELS, Incident, ScenarioModel, build_frames, write_duckdb
from mlmon.sinks.jsonl import JsonlSink

ROOT = Path(__file__).resolve().parents[1]
#: evaluation time: a weekday afternoon (busy traffic), 3 minutes past a window boundary
END = dt.datetime(2026, 11, 20, 14, 3, tzinfo=dt.timezone.utc).timestamp()
INSTANCE = "incidents"


@dataclass(frozen=True)
class Case:
    """Incidents to plant, the monitors expected to fire as ``(monitor, group)`` (and to warn: ``warns``),
    and how the agent runs.

    ``agent_runs`` are the agent's clocks, as seconds before ``END``; ``warehouse_lost`` removes the
    warehouse before the last run.
    """

    incidents: tuple[Incident, ...]
    fires: frozenset[tuple[str, tuple[tuple[str, str], ...]]]
    agent_runs: tuple[float, ...] = (0.0,)
    warehouse_lost: bool = False
    #: a statement run on the warehouse before the agent runs (a migration gone wrong)
    migration: str = ""
    warns: frozenset[tuple[str, tuple[tuple[str, str], ...]]] = frozenset()
    #: the models of the warehouse (the three of the demo, then any of EXTRA_MODELS) and its hours of traffic
    models: tuple[ScenarioModel, ...] = MODELS
    hours: float = 30
    #: settings of the predictions job on top of the suite's
    predictions: tuple[tuple[str, object], ...] = ()


def model(name: str) -> tuple[tuple[str, str], ...]:
    return (("model", name),)


def feature(model_name: str, name: str) -> tuple[tuple[str, str], ...]:
    return (("model", model_name), ("feature", name))


def extra(name: str) -> tuple[ScenarioModel, ...]:
    """The demo's models, then the extra one ``name``."""
    return (*MODELS, *(m for m in EXTRA_MODELS if m.name == name))


def segment(model_name: str, value: str, column: str = "placement") -> tuple[tuple[str, str], ...]:
    """The group of a segment monitor (``by {model,segment,segment_value}``)."""
    return (("model", model_name), ("segment", column), ("segment_value", value))




CASES = {
    "healthy": Case((), frozenset()),
    "offline_regression": Case(
        (Incident("offline_regression", "cvr_app"),),
        frozenset({("offline_quality_regression", model("cvr_app"))}),
    ),
    # a sudden 40 % drop is also a drop vs 30 days ago
    "training_rows_drop": Case(
        (Incident("rows_drop", "ctr_video"),),
        frozenset({("training_rows_drop_prev", model("ctr_video")), ("training_rows_drop_30d", model("ctr_video"))}),
    ),
    # -1.5 % a version: under every version-to-version threshold, -36 % over 30 days
    "training_rows_shrink": Case(
        (Incident("rows_shrink", "ctr_video"),),
        frozenset({("training_rows_drop_30d", model("ctr_video"))}),
    ),
    # outcomes moved, predictions did not: only the label-based monitor can see it (every placement alike:
    # the segment monitors compare each slice with its model, so they stay quiet)
    "online_quality_degraded": Case(
        (Incident("concept_shift", "ctr_banner", since=6 * HOUR),),
        frozenset({("online_quality_degraded", model("ctr_banner"))}),
    ),
    "predictions_unavailable": Case(
        (Incident("unavailable", "ctr_video", since=45 * 60),),
        frozenset({("predictions_unavailable", model("ctr_video"))}),
    ),
    # the mean prediction moved about 2.9x (PSI and the mean ratio both see it); the outcomes did not follow: once
    # labels mature the model over-predicts (calibration about 3x), which costs little logloss at a 2 % base rate:
    # the logloss monitor only warns
    "predictions_shifted": Case(
        (Incident("shifted", "ctr_banner", since=6 * HOUR),),
        frozenset({("predictions_shifted", model("ctr_banner")), ("predictions_mean_shifted", model("ctr_banner")),
                   ("online_miscalibrated", model("ctr_banner"))}),
        warns=frozenset({("online_quality_degraded", model("ctr_banner"))}),
    ),
    # a point mass is also a shifted distribution (PSI vs yesterday)
    "same_value_ratio_high": Case(
        (Incident("stuck", "cvr_app", since=3 * HOUR),),
        frozenset({("same_value_ratio_high", model("cvr_app")), ("predictions_shifted", model("cvr_app"))}),
    ),
    "reproducibility_low": Case(
        (Incident("replays_differ", "cvr_app", since=DAY),),
        frozenset({("reproducibility_low", model("cvr_app"))}),
    ),
    "model_stale": Case(
        (Incident("stale", "ctr_video", since=3 * DAY),),
        frozenset({("model_stale", model("ctr_video"))}),
    ),
    # the model trained on a constant bid_floor and serves real ones: serving is skewed against its training data
    "feature_collapsed": Case(
        (Incident("feature_collapsed", "ctr_banner"),),
        frozenset({("feature_collapsed", feature("ctr_banner", "bid_floor")),
                   ("training_serving_skew", feature("ctr_banner", "bid_floor"))}),
    ),
    # an all-NULL window has no distribution: no PSI, no same-value ratio, only the null ratio speaks
    "serving_feature_nulls": Case(
        (Incident("serving_null", "ctr_banner", since=3 * HOUR, feature="age"),),
        frozenset({("serving_feature_nulls", feature("ctr_banner", "age"))}),
    ),
    # bid_floor served in cents to a model trained on dollars: nothing NULL, nothing stuck, only the skew
    "training_serving_skew": Case(
        (Incident("serving_scale", "ctr_video", since=3 * HOUR, feature="bid_floor"),),
        frozenset({("training_serving_skew", feature("ctr_video", "bid_floor"))}),
    ),
    # a point mass is also a distribution unlike the training data's (PSI vs training)
    "serving_feature_stuck": Case(
        (Incident("serving_stuck", "cvr_app", since=3 * HOUR, feature="device"),),
        frozenset({("serving_feature_stuck", feature("cvr_app", "device")),
                   ("training_serving_skew", feature("cvr_app", "device"))}),
    ),
    # one placement's outcomes stopped following the score: its AUC falls to 0.5 while the model's, averaged
    # over all placements, stays within every model-wide threshold; its calibration does not move
    "segment_quality_gap": Case(
        (Incident("segment_uninformative", "ctr_banner", since=12 * HOUR, placement="search"),),
        frozenset({("segment_quality_gap", segment("ctr_banner", "search"))}),
    ),
    # one placement's positive rate halved while its predictions stayed: 2x over-predicted there, about
    # 1.2x for the model as a whole (under online_miscalibrated's warning); its ranking does not move
    "segment_miscalibrated": Case(
        (Incident("segment_overpredicted", "ctr_video", since=12 * HOUR, placement="feed"),),
        frozenset({("segment_miscalibrated", segment("ctr_video", "feed"))}),
    ),
    # ~100 predictions a 10-minute window, under drift_min_rows: each window pools the ones before it (half an
    # hour) and is compared with the same span yesterday. The shift (about 3x the mean) fires within the hour
    "low_traffic_shift": Case(
        (Incident("shifted", "ctr_native", since=HOUR),),
        frozenset({("predictions_shifted", model("ctr_native")), ("predictions_mean_shifted", model("ctr_native"))}),
        models=extra("ctr_native"),
    ),
    "low_traffic_healthy": Case((), frozenset(), models=extra("ctr_native")),
    # six hours old: no window a day or a week earlier; compared with its version's validation predictions
    "young_model_shift": Case(
        (Incident("shifted", "ctr_story", since=HOUR),),
        frozenset({("predictions_shifted", model("ctr_story")), ("predictions_mean_shifted", model("ctr_story"))}),
        models=extra("ctr_story"),
    ),
    "young_model_healthy": Case((), frozenset(), models=extra("ctr_story")),
    # Friday's predictions sit 0.6 logit above Thursday's, as every week: compared with last Friday, quiet
    "weekly_seasonal_healthy": Case((), frozenset(), models=extra("ctr_weekend"), hours=8 * 24),
    # ... and compared with yesterday, as drift_reference: 1d does, the healthy weekly cycle is a shift
    "weekly_seasonal_vs_yesterday": Case(
        (),
        frozenset({("predictions_shifted", model("ctr_weekend")), ("predictions_mean_shifted", model("ctr_weekend"))}),
        models=extra("ctr_weekend"), hours=8 * 24, predictions=(("drift_reference", "1d"),),
    ),
    # a migration renamed the label column: the quality job fails at each run, the others go on
    "job_failing": Case(
        (), frozenset({("job_failing", (("instance", INSTANCE), ("job", "quality")))}), agent_runs=(HOUR, 0.0),
        migration="ALTER TABLE labels RENAME COLUMN label TO is_click",
    ),
    # the agent last ran two hours ago: no data from it since
    "agent_down": Case((), frozenset({("agent_not_reporting", (("instance", INSTANCE),))}), agent_runs=(2 * HOUR,)),
    # the agent runs but cannot read the warehouse: its lag grows past the threshold
    "agent_stuck": Case(
        (), frozenset({("agent_not_reporting", (("instance", INSTANCE),))}), agent_runs=(3 * HOUR, 0.0),
        warehouse_lost=True,
    ),
}


def suite_config(warehouse: Path, state: Path, predictions: tuple[tuple[str, object], ...] = ()) -> dict:
    return {
        "init_config": {"env": "test", "state_dir": str(state), "datadog": {"transport": "jsonl"}},
        "instances": [{
            "name": INSTANCE,
            "warehouse": {"engine": "duckdb", "path": str(warehouse)},
            "tags": ["team:ads"],
            "jobs": {
                "predictions": {"initial_lookback": "3h", "segment_by": ["placement"], **dict(predictions)},
                # the segment monitors average a day of hourly windows (the model's online monitors three); in one
                # run segments start at the data's first UTC midnight (each day's values are the previous day's top
                # placements), which 14 hours reach back to
                "quality": {"initial_lookback": "14h", "label_delay": "1h", "label_delay_by_model": {"cvr_app": "1d"},
                            "segment_by": ["placement"]},
                "reproducibility": {"initial_lookback": "4h"},
                "training": {"features": ["age", "device", "bid_floor"]},
                "serving_features": {"initial_lookback": "3h", "features": ["age", "device", "bid_floor"],
                                     "categorical": ["device"]},
            },
        }],
    }


def run_case(case: Case, directory: Path) -> Path:
    """Build the warehouse, run the agent at each clock into a JSON Lines file, return the file."""
    warehouse, jsonl = directory / "warehouse.duckdb", directory / "metrics.jsonl"
    write_duckdb(warehouse, build_frames(END, case.incidents, hours=case.hours, models=case.models))
    if case.migration:
        import duckdb

        with duckdb.connect(str(warehouse)) as con:
            con.execute(case.migration)
    config = parse_config(suite_config(warehouse, directory / "state", case.predictions))
    for i, before in enumerate(case.agent_runs):
        if case.warehouse_lost and i == len(case.agent_runs) - 1:
            warehouse.unlink()
        Agent(config, JsonlSink(jsonl), clock=lambda before=before: END - before).run_once()
    return jsonl


@pytest.fixture(scope="module")
def monitors():
    return load_monitors(ROOT)


def test_every_shipped_monitor_has_an_incident() -> None:
    """The suite covers each monitor in monitors/ with at least one incident that fires it."""
    covered = {name for case in CASES.values() for name, _ in case.fires}
    shipped = {p.stem for p in (ROOT / "monitors").glob("*.json")}
    assert covered == shipped, sorted(shipped ^ covered)


@pytest.mark.parametrize("name", sorted(CASES))
def test_incident_fires_its_monitor_and_nothing_else(name: str, tmp_path: Path, monitors) -> None:
    """At END, the monitors that fire are exactly the ones the incident is for, on the right group."""
    case = CASES[name]
    results = evaluate(monitors, Recording.load(run_case(case, tmp_path)), at=END)
    fired = {(r.monitor, r.group) for r in results if r.fires}
    assert fired == case.fires, "\n".join(f"{r.monitor} {r.group} {r.status} {r.value}" for r in results if r.fires)
    # warnings notify too: only where the case expects them
    warned = {(r.monitor, r.group) for r in results if r.status is Status.WARN}
    assert warned <= case.fires | case.warns, sorted(warned - case.fires - case.warns)
    # and the healthy models were evaluated, not silently absent
    evaluated = {r.monitor for r in results}
    if not case.warehouse_lost and case.agent_runs == (0.0,):
        assert evaluated == {p.stem for p in (ROOT / "monitors").glob("*.json")}


def test_scenarios_differ_only_where_the_incident_is() -> None:
    """Same seed, one incident: the other models' rows are identical, and the incident model's too outside it."""
    healthy = build_frames(END, (), hours=2)
    gap = Incident("unavailable", "ctr_video", since=30 * 60)
    planted = build_frames(END, (gap,), hours=2)
    for table in ("training_runs", "training_features"):
        assert healthy[table].equals(planted[table]), table
    before, after = healthy["predictions"], planted["predictions"]
    ts = before["ts"].astype("int64").to_numpy() / 1e9
    inside = (before["model"] == "ctr_video").to_numpy() & gap.mask(ts, END)
    assert inside.sum() > 0
    assert before[~inside].reset_index(drop=True).equals(after.reset_index(drop=True))


@pytest.mark.parametrize("kind", ["segment_uninformative", "segment_overpredicted"])
def test_segment_incidents_change_only_their_placements_labels(kind: str) -> None:
    """A segment incident changes labels of its model's requests in its placement inside it, nothing else: the
    uninformative one redraws them at the placement's base rate (its AUC is 0.5), the over-predicted one turns
    about half its positives into negatives."""
    healthy = build_frames(END, (), hours=6)
    incident = Incident(kind, "ctr_video", since=4 * HOUR)
    planted = build_frames(END, (incident,), hours=6)
    for table in ("predictions", "replays", "training_runs", "training_features"):
        assert healthy[table].equals(planted[table]), table
    predictions = healthy["predictions"]
    ts = predictions["ts"].astype("int64").to_numpy() / 1e9
    there = ((predictions["model"] == "ctr_video") & (predictions["placement"] == incident.placement)).to_numpy()
    inside = there & incident.mask(ts, END)
    assert inside.sum() > 1000
    before, after = healthy["labels"], planted["labels"]
    assert (before["request_id"] == predictions["request_id"]).all()
    assert before[~inside].equals(after[~inside])
    assert before[["request_id", "label_ts"]].equals(after[["request_id", "label_ts"]])
    was, now = before["label"].to_numpy()[inside], after["label"].to_numpy()[inside]
    scores = predictions["prediction"].to_numpy()[inside]
    if kind == "segment_uninformative":
        from sklearn.metrics import roc_auc_score

        assert roc_auc_score(was, scores) > 0.65 and abs(roc_auc_score(now, scores) - 0.5) < 0.05
        assert abs(now.mean() - was.mean()) < 0.01
    else:
        assert not (now > was).any()  # positives lost, never gained
        assert 0.4 < now.sum() / was.sum() < 0.6


def test_placements_have_unequal_shares_and_some_nulls() -> None:
    """The placement column: six values at their shares, 2 % NULL, independent of the score."""
    from mlmon.scenarios import PLACEMENT_SHARES, PLACEMENTS

    predictions = build_frames(END, (), hours=6)["predictions"]
    shares = predictions["placement"].value_counts(normalize=True, dropna=False)
    assert shares.index.dropna().tolist() == list(PLACEMENTS)  # in the order of their shares
    for value, share in zip(PLACEMENTS, PLACEMENT_SHARES, strict=True):
        assert abs(shares[value] - share) < 0.01, value
    assert abs(predictions["placement"].isna().mean() - (1 - sum(PLACEMENT_SHARES))) < 0.005
    means = predictions.groupby(predictions["placement"].fillna("__null__"))["prediction"].mean()
    assert means.max() - means.min() < 0.005


def test_segment_incident_placements_are_checked() -> None:
    """A segment incident takes its kind's placement by default; another kind or an unknown placement is refused."""
    assert Incident("segment_uninformative", "ctr_video").placement == "search"
    assert Incident("segment_overpredicted", "ctr_video").placement == "feed"
    assert Incident("segment_overpredicted", "ctr_video", placement="video").placement == "video"
    with pytest.raises(ValueError, match="unknown placement 'homepage'"):
        Incident("segment_uninformative", "ctr_video", placement="homepage")
    with pytest.raises(ValueError, match="'shifted' takes no placement"):
        Incident("shifted", "ctr_video", placement="feed")


@pytest.mark.parametrize("kind", ["serving_null", "serving_scale", "serving_stuck"])
def test_serving_incidents_change_only_their_feature(kind: str) -> None:
    """A serving feature incident changes its feature's column on its model's rows inside it, and nothing else."""
    healthy = build_frames(END, (), hours=2)
    incident = Incident(kind, "ctr_video", since=30 * 60)
    planted = build_frames(END, (incident,), hours=2)
    for table in ("labels", "replays", "training_runs", "training_features"):
        assert healthy[table].equals(planted[table]), table
    before, after = healthy["predictions"], planted["predictions"]
    ts = before["ts"].astype("int64").to_numpy() / 1e9
    inside = (before["model"] == "ctr_video").to_numpy() & incident.mask(ts, END)
    assert inside.sum() > 0
    others = [c for c in before.columns if c != incident.feature]
    assert before[others].equals(after[others])
    assert before.loc[~inside, incident.feature].equals(after.loc[~inside, incident.feature])
    changed = after.loc[inside, incident.feature]
    if kind == "serving_null":
        assert changed.isna().all()
    elif kind == "serving_scale":
        assert (changed.to_numpy() == before.loc[inside, incident.feature].to_numpy() * 100).all()
    else:
        assert changed.nunique() == 1


def test_serving_features_are_drawn_like_the_training_rows() -> None:
    """Each serving feature column has the training rows' distribution (within sampling error)."""
    frames = build_frames(END, (), hours=6)
    serving, training = frames["predictions"], frames["training_features"]
    assert abs(serving["age"].isna().mean() - training["age"].isna().mean()) < 0.02
    for column in ("age", "bid_floor"):
        assert abs(serving[column].mean() - training[column].mean()) < 0.05 * training[column].mean()
    shares = serving["device"].value_counts(normalize=True) - training["device"].value_counts(normalize=True)
    assert shares.abs().max() < 0.02


def test_serving_incident_features_are_checked() -> None:
    """A serving incident takes its kind's feature by default; a wrong kind or feature is refused by name."""
    assert Incident("serving_null", "ctr_video").feature == "age"
    assert Incident("serving_stuck", "ctr_video", feature="bid_floor").feature == "bid_floor"
    with pytest.raises(ValueError, match="unknown feature 'device'"):
        Incident("serving_scale", "ctr_video", feature="device")
    with pytest.raises(ValueError, match="'stuck' takes no feature"):
        Incident("stuck", "ctr_video", feature="age")
