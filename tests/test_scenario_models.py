"""The scenario warehouse's extra models (low traffic, young, weekly-seasonal) and its validation predictions:
each has the property the incident suite relies on, and none of them moves the rows of the default models."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from mlmon.scenarios import (
    DAY,
    EXTRA_MODELS,
    HOUR,
    MODELS,
    STUCK_VALUE,
    VALIDATION_ROWS,
    WEEKLY_OFFSETS,
    Incident,
    ScenarioModel,
    build_frames,
    write_duckdb,
)

#: the incident suite's evaluation time: Friday 2026-11-20, 14:03 UTC
END = dt.datetime(2026, 11, 20, 14, 3, tzinfo=dt.timezone.utc).timestamp()
EXTRA = {m.name: m for m in EXTRA_MODELS}


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    """The suite's 30 hours, with every model."""
    return build_frames(END, (), hours=30, models=(*MODELS, *EXTRA_MODELS))


def seconds(column: pd.Series) -> np.ndarray:
    """Unix seconds of a datetime column, whatever its unit (``ts`` is in ns, ``trained_at`` in s)."""
    out: np.ndarray = column.dt.as_unit("ns").astype("int64").to_numpy() / 1e9
    return out


def of(frame: pd.DataFrame, model: str) -> pd.DataFrame:
    return frame[frame["model"] == model].reset_index(drop=True)


def logit(p: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.log(p / (1 - p))
    return out


def test_extra_models_are_not_default_models() -> None:
    """The extra models are their own tuple: the demo and the existing cases build MODELS only."""
    assert [m.name for m in EXTRA_MODELS] == ["ctr_native", "ctr_story", "ctr_weekend"]
    assert not {m.name for m in MODELS} & set(EXTRA)
    assert all(m.age is None and m.weekly == () for m in MODELS)
    assert set(build_frames(END, (), hours=1)["predictions"]["model"]) == {m.name for m in MODELS}


def test_low_traffic_model_serves_about_100_predictions_per_window(frames: dict[str, pd.DataFrame]) -> None:
    """ctr_native: ~100 predictions per 10-minute window on average over the 30 hours, in every window."""
    ts = seconds(of(frames["predictions"], "ctr_native")["ts"])
    windows = np.floor((ts - (END - 30 * HOUR)) / 600).astype(int)
    counts = np.bincount(windows, minlength=30 * 6)
    assert len(counts) == 30 * 6
    assert 80 <= counts.mean() <= 120, counts.mean()
    assert counts.min() > 0  # low, never empty
    # clicks: labeled within minutes (20 on average)
    labels = frames["labels"].set_index("request_id").loc[of(frames["predictions"], "ctr_native")["request_id"]]
    delay = seconds(labels["label_ts"]) - ts
    assert 15 * 60 < delay.mean() < 25 * 60


def test_young_model_serves_only_its_age_and_has_only_its_versions(frames: dict[str, pd.DataFrame]) -> None:
    """ctr_story (6 hours old): no prediction before END - 6 h, traffic from then on; training runs, training
    features and validation predictions for its serving version(s) and no older one."""
    story = EXTRA["ctr_story"]
    assert story.age == 6 * HOUR
    predictions = of(frames["predictions"], "ctr_story")
    ts = seconds(predictions["ts"])
    assert ts.min() >= END - story.age
    assert ts.min() < END - story.age + 60  # it serves from its first minute, not later
    assert ts.max() < END
    # its traffic per minute is the other 40-per-minute CTR models' over those hours
    video = seconds(of(frames["predictions"], "ctr_video")["ts"])
    assert abs(len(ts) / (video >= END - story.age).sum() - 1) < 0.05

    serving = set(predictions["model_version"])
    runs = of(frames["training_runs"], "ctr_story")
    assert serving <= set(runs["model_version"])
    trained = seconds(runs["trained_at"])
    # the first version is the one serving when it starts: trained at or before its first request, at most a day
    assert trained.min() <= END - story.age < trained.min() + DAY
    assert set(runs["model_version"]) == serving  # 02:00 of END's day: one version
    assert set(of(frames["training_features"], "ctr_story")["model_version"]) == serving
    validation = of(frames["validation_predictions"], "ctr_story")
    assert validation.groupby("model_version").size().to_dict() == dict.fromkeys(serving, VALIDATION_ROWS)


def test_an_older_young_model_has_the_version_serving_at_its_start() -> None:
    """A model 30 hours old at 14:03 started at 08:03 the day before: it serves yesterday's 02:00 version,
    then today's, and has those two runs only."""
    model = ScenarioModel("ctr_young", 0.03, 10.0, 20 * 60, age=30 * HOUR)
    built = build_frames(END, (), hours=48, models=(model,))
    ts = seconds(built["predictions"]["ts"])
    assert ts.min() >= END - 30 * HOUR
    assert built["training_runs"]["model_version"].tolist() == ["v20261119", "v20261120"]
    first = built["predictions"].loc[np.argmin(ts), "model_version"]
    assert first == "v20261119"
    assert set(built["training_features"]["model_version"]) == {"v20261119", "v20261120"}
    assert set(built["validation_predictions"]["model_version"]) == {"v20261119", "v20261120"}


def test_weekly_model_moves_day_to_day_but_not_week_to_week() -> None:
    """ctr_weekend over 8 days: Friday's mean prediction logit is >= 0.5 above Thursday's, the same weekday a week
    apart within 0.05; its outcomes move with its predictions (healthy, only seasonal)."""
    weekend = EXTRA["ctr_weekend"]
    assert weekend.weekly == WEEKLY_OFFSETS and len(WEEKLY_OFFSETS) == 7
    built = build_frames(END, (), hours=8 * 24, models=(weekend,))
    predictions, labels = built["predictions"], built["labels"]
    assert (predictions["request_id"] == labels["request_id"]).all()
    days = predictions.assign(logit=logit(predictions["prediction"].to_numpy()), label=labels["label"].to_numpy(),
                              day=predictions["ts"].dt.strftime("%Y-%m-%d"))
    per_day = days.groupby("day").agg(logit=("logit", "mean"), prediction=("prediction", "mean"),
                                      label=("label", "mean"))
    assert dt.date(2026, 11, 20).weekday() == 4  # END is a Friday
    friday, thursday = per_day.loc["2026-11-20"], per_day.loc["2026-11-19"]
    assert friday["logit"] - thursday["logit"] >= 0.5
    assert abs(friday["logit"] - per_day.loc["2026-11-13", "logit"]) < 0.05
    assert abs(thursday["logit"] - per_day.loc["2026-11-12", "logit"]) < 0.05
    # outcomes follow the predictions every day: calibrated within sampling error, on weekdays and weekends
    ratio = per_day["label"] / per_day["prediction"]
    assert ((ratio > 0.9) & (ratio < 1.15)).all(), ratio
    assert per_day.loc["2026-11-20", "label"] > 1.4 * per_day.loc["2026-11-19", "label"]


def test_weekly_offsets_follow_the_utc_weekday() -> None:
    """Each request's logit offset is its UTC weekday's, Monday first: the day means differ as the offsets do."""
    weekend = EXTRA["ctr_weekend"]
    flat = ScenarioModel("ctr_flat", weekend.base_rate, weekend.per_minute, weekend.label_delay)
    seasonal = build_frames(END, (), hours=8 * 24, models=(weekend,))["predictions"]
    plain = build_frames(END, (), hours=8 * 24, models=(flat,))["predictions"]
    assert seasonal["ts"].equals(plain["ts"])  # the same draws: only the offset differs
    offset = logit(seasonal["prediction"].to_numpy()) - logit(plain["prediction"].to_numpy())
    expected = np.asarray(WEEKLY_OFFSETS)[seasonal["ts"].dt.day_of_week.to_numpy()]
    np.testing.assert_allclose(offset, expected, atol=1e-9)


def test_scenario_model_fields_are_checked() -> None:
    with pytest.raises(ValueError, match="7 offsets"):
        ScenarioModel("m", 0.02, 10.0, 60.0, weekly=(0.1, 0.2))
    with pytest.raises(ValueError, match="age must be positive"):
        ScenarioModel("m", 0.02, 10.0, 60.0, age=0.0)


def test_validation_predictions_cover_every_trained_version(frames: dict[str, pd.DataFrame]) -> None:
    """One validation sample per (model, version) of training_runs, VALIDATION_ROWS predictions in (0, 1)."""
    validation = frames["validation_predictions"]
    assert list(validation.columns) == ["model", "model_version", "prediction"]
    sizes = validation.groupby(["model", "model_version"]).size()
    runs = frames["training_runs"]
    assert set(sizes.index) == set(zip(runs["model"], runs["model_version"], strict=True))
    assert (sizes == VALIDATION_ROWS).all()
    assert ((validation["prediction"] > 0) & (validation["prediction"] < 1)).all()


@pytest.mark.parametrize("model", ["ctr_banner", "ctr_native"])
def test_validation_predictions_are_drawn_like_healthy_serving(frames: dict[str, pd.DataFrame], model: str) -> None:
    """A version's validation predictions have the distribution of its healthy serving predictions (KS), unlike
    a weekly-seasonal model's Friday traffic against its (offset-free) validation sample."""
    predictions = of(frames["predictions"], model)
    version = predictions["model_version"].value_counts().idxmax()
    served = predictions.loc[predictions["model_version"] == version, "prediction"].to_numpy()
    validation = frames["validation_predictions"]
    offline = validation.loc[(validation["model"] == model) & (validation["model_version"] == version), "prediction"]
    assert len(served) > 5000 and len(offline) == VALIDATION_ROWS
    assert ks_2samp(offline.to_numpy(), served).pvalue > 0.01
    # the test can tell: ctr_weekend's Thursday (-0.6 logit) is not its validation sample's distribution
    weekend = of(frames["predictions"], "ctr_weekend")
    thursday = weekend.loc[(weekend["ts"] >= pd.Timestamp("2026-11-19")) & (weekend["ts"] < pd.Timestamp("2026-11-20")),
                           ["model_version", "prediction"]]
    sample = of(validation, "ctr_weekend")
    sample = sample.loc[sample["model_version"] == thursday["model_version"].iloc[-1], "prediction"]
    assert ks_2samp(sample.to_numpy(), thursday["prediction"].to_numpy()).pvalue < 0.01


def test_validation_predictions_move_with_no_incident() -> None:
    """Incidents change the serving data and the runs' metrics, never the validation samples (stale drops the
    versions it never trained, the others' samples stay)."""
    healthy = build_frames(END, (), hours=2)["validation_predictions"]
    planted = build_frames(END, (Incident("offline_regression", "ctr_banner"), Incident("shifted", "ctr_banner",
                           since=HOUR), Incident("stale", "ctr_video", since=3 * DAY)), hours=2)
    after = planted["validation_predictions"]
    kept = set(zip(planted["training_runs"]["model"], planted["training_runs"]["model_version"], strict=True))
    assert len(kept) == 3 * 41 - 3
    left = healthy[[k in kept for k in zip(healthy["model"], healthy["model_version"], strict=True)]]
    assert left.reset_index(drop=True).equals(after)


def test_default_models_are_unchanged_by_the_extra_models() -> None:
    """models=MODELS is the default call, and with the extra models after them the default models' rows of every
    table are the same: the extra models draw after them, from the same generator or their own ones."""
    default = build_frames(END, (), hours=2)
    explicit = build_frames(END, (), hours=2, models=MODELS)
    assert default.keys() == explicit.keys()
    for table, frame in default.items():
        assert frame.equals(explicit[table]), table
    every = build_frames(END, (), hours=2, models=(*MODELS, *EXTRA_MODELS))
    names = {m.name for m in MODELS}
    assert set(every["predictions"]["model"]) == names | set(EXTRA)
    ids = default["predictions"]["request_id"]
    for table, frame in default.items():
        wider = every[table]
        mine = wider["model"].isin(names) if "model" in wider else wider["request_id"].isin(ids)
        assert frame.equals(wider[mine].reset_index(drop=True)), table
        assert (~mine).sum() > 0, table  # the extra models have rows in every table


def test_the_validation_sample_moves_no_other_draw(monkeypatch: pytest.MonkeyPatch) -> None:
    """The validation predictions come from a generator of their own: a sample of another size changes that table
    only, every other table of every model (drawn after it from the shared generator) stays."""
    import mlmon.scenarios

    models = (*MODELS, *EXTRA_MODELS)
    before = build_frames(END, (), hours=2, models=models)
    monkeypatch.setattr(mlmon.scenarios, "VALIDATION_ROWS", 10)
    after = build_frames(END, (), hours=2, models=models)
    assert len(after["validation_predictions"]) * VALIDATION_ROWS == len(before["validation_predictions"]) * 10
    for table, frame in before.items():
        if table != "validation_predictions":
            assert frame.equals(after[table]), table


def test_incidents_on_extra_models() -> None:
    """An incident may name an extra model, which the build must then include; an unknown model is refused."""
    stuck = Incident("stuck", "ctr_native", since=HOUR)
    with pytest.raises(ValueError, match="not built: ctr_native"):
        build_frames(END, (stuck,), hours=2)
    built = build_frames(END, (stuck,), hours=2, models=(*MODELS, EXTRA["ctr_native"]))
    native = of(built["predictions"], "ctr_native")
    inside = stuck.mask(seconds(native["ts"]), END)
    assert inside.sum() > 0 and (native.loc[inside, "prediction"] == STUCK_VALUE).all()
    with pytest.raises(ValueError, match=r"unknown model 'ctr_nope'.*ctr_weekend"):
        Incident("stuck", "ctr_nope")
    with pytest.raises(ValueError, match="named twice: ctr_native"):
        build_frames(END, (), hours=1, models=(EXTRA["ctr_native"], EXTRA["ctr_native"]))


def test_duckdb_warehouse_has_the_validation_predictions(tmp_path: Path, frames: dict[str, pd.DataFrame]) -> None:
    """write_duckdb writes every frame, the new table too, with its columns and rows."""
    import duckdb

    path = tmp_path / "warehouse.duckdb"
    counts = write_duckdb(path, frames)
    assert counts["validation_predictions"] == len(frames["validation_predictions"])
    with duckdb.connect(str(path), read_only=True) as con:
        columns = con.execute("SELECT column_name, data_type FROM information_schema.columns "
                              "WHERE table_name = 'validation_predictions' ORDER BY ordinal_position").fetchall()
        assert [c for c, _ in columns] == ["model", "model_version", "prediction"]
        assert dict(columns)["prediction"] == "DOUBLE"
        rows = con.execute("SELECT model, count(*), count(DISTINCT model_version) FROM validation_predictions "
                           "GROUP BY model ORDER BY model").fetchall()
    assert rows == [("ctr_banner", 41 * VALIDATION_ROWS, 41), ("ctr_native", 41 * VALIDATION_ROWS, 41),
                    ("ctr_story", VALIDATION_ROWS, 1), ("ctr_video", 41 * VALIDATION_ROWS, 41),
                    ("ctr_weekend", 41 * VALIDATION_ROWS, 41), ("cvr_app", 41 * VALIDATION_ROWS, 41)]
