"""``mlmon plan``'s cost estimate: series / 100 x ``init_config.custom_metric_price`` per job, instance and in
total, in the text and the JSON output; a price that is not a non-negative number is a config error."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.scenarios import write_every_table
from tests.test_plan import INIT, LOOKBACKS, NOW

from mlmon.cli import main
from mlmon.config import parse_config
from mlmon.config.instance import DEFAULT_CUSTOM_METRIC_PRICE


@pytest.fixture
def frozen_clock(monkeypatch) -> None:
    monkeypatch.setattr(time, "time", lambda: NOW)


def write_config(tmp_path: Path, warehouse: Any, price: Any = None) -> Path:
    """Two instances over the same warehouse (one with every job, one with training only), priced at ``price``
    (None: the default)."""
    init = {**INIT, "state_dir": str(tmp_path / "state"), **({} if price is None else {"custom_metric_price": price})}
    path = tmp_path / "conf.yaml"
    path.write_text(yaml.safe_dump({"init_config": init, "instances": [
        {"name": "ads", "warehouse": warehouse.config(), "jobs": LOOKBACKS},
        {"name": "lean", "warehouse": warehouse.config(),
         "jobs": {job: {"enabled": False} for job in ("predictions", "quality", "reproducibility")}},
    ]}))
    return path


def test_the_default_price_is_datadogs_list_price() -> None:
    """$5 per 100 custom metrics per month, unless the config says otherwise."""
    config = parse_config({"instances": [{"name": "a", "warehouse": {"engine": "duckdb", "path": "w.duckdb"}}]})
    assert config.init_config.custom_metric_price == DEFAULT_CUSTOM_METRIC_PRICE == 5.0


@pytest.mark.parametrize(("configured", "price"), [(None, 5.0), (7.25, 7.25), ("0.4", 0.4), (0, 0.0)])
def test_json_cost_is_series_over_100_times_the_price(
    duckdb_warehouse, tmp_path, capsys, frozen_clock, configured, price
) -> None:
    """Every job, every instance and the whole plan: estimated_monthly_cost_usd = total_series / 100 x price."""
    write_every_table(duckdb_warehouse, NOW)
    assert main(["plan", "--config", str(write_config(tmp_path, duckdb_warehouse, configured)),
                 "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["custom_metric_price_usd_per_100_per_month"] == price
    jobs = [j for i in doc["instances"] for j in i["jobs"]]
    assert sum(j["total_series"] > 0 for j in jobs) >= 5  # not vacuous: jobs with series in both instances
    for item in [doc, *doc["instances"], *jobs]:
        assert isinstance(item["estimated_monthly_cost_usd"], float)
        assert item["estimated_monthly_cost_usd"] == pytest.approx(item["total_series"] / 100 * price)
    assert doc["total_series"] > 100  # more than one hundred series: the division shows


#: 7.2: series x 7.2 / 100 is a whole number of tenths of a cent, never a half cent that float rounding could tip
@pytest.mark.parametrize(("configured", "price", "shown"), [(None, 5.0, "$5"), (7.2, 7.2, "$7.2")])
def test_text_shows_the_cost_next_to_each_count(
    duckdb_warehouse, tmp_path, capsys, frozen_clock, configured, price, shown
) -> None:
    """Each job total, instance total and the overall total is followed by ~$X/month (to the cent), and the
    price and why it is an estimate are said once."""
    write_every_table(duckdb_warehouse, NOW)
    assert main(["plan", "--config", str(write_config(tmp_path, duckdb_warehouse, configured))]) == 0
    out = capsys.readouterr().out

    def cost(series: str) -> str:
        return f"~${int(series.replace(',', '')) / 100 * price:,.2f}/month"

    job_totals = re.findall(r"^ +job total +([\d,]+)  (\S+)$", out, re.MULTILINE)
    assert len(job_totals) == 5  # four jobs of ads, training of lean
    instance_totals = re.findall(r"^  instance \w+ total: ([\d,]+) custom-metric series \((\S+)\)", out, re.MULTILINE)
    assert len(instance_totals) == 2
    (total,) = re.findall(r"^total: ([\d,]+) custom-metric series in 2 instance\(s\), (\S+) ", out, re.MULTILINE)
    for series, shown_cost in [*job_totals, *instance_totals, total]:
        assert shown_cost == cost(series), (series, shown_cost)
    assert int(total[0].replace(",", "")) > 100
    assert f"cost estimated at {shown} per 100 custom metrics per month (init_config.custom_metric_price)" in out
    assert "an estimate only: Datadog bills the hourly average of distinct series" in out
    assert "allotment of custom metrics per host" in out


@pytest.mark.parametrize("bad", [-1, -0.01, "five", "$5", True, None, [5], float("inf"), float("nan")])
def test_a_bad_price_is_a_config_error_naming_the_key(duckdb_warehouse, tmp_path, capsys, bad) -> None:
    """A negative, non-numeric or infinite price: exit 2, the message names init_config -> custom_metric_price."""
    path = tmp_path / "conf.yaml"
    path.write_text(yaml.safe_dump({"init_config": {"custom_metric_price": bad},
                                    "instances": [{"name": "ads", "warehouse": duckdb_warehouse.config()}]}))
    assert main(["plan", "--config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{path}: invalid configuration" in err and "init_config -> custom_metric_price: " in err
