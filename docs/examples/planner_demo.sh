#!/usr/bin/env bash
# A planner's week through the CLI, on daily store sales:
#   - 12 stores with a year of sales that drop on US holidays, 2 new stores with 16 and 20 days;
#   - a 14-day horizon that holds Christmas and New Year's Day, with `source.holidays = ["US"]`;
#   - a few days of actuals arrive, one of them a spike 10x the store's usual sales.
# It shows, from the tables, the Parquet dataset and the report: each store's forecast method (the new
# stores `short_history` or `network`), the lookback the established stores derive with or without the new
# ones, the holiday inputs the version was trained with, and the spike flagged in the view `anomalies`.
# Every fact is checked: the script exits non-zero when one is missing.
#
#   docs/examples/planner_demo.sh [WORKDIR]      (after `make install`, from anywhere)
# PYTHON (default: the repository's .venv/bin/python, else python3) and FORECASTING (default:
# "$PYTHON -m forecasting") name the commands to use; a relative PYTHON is read from where you are.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
case "$PYTHON" in */*) PYTHON="$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON")" ;; esac
FORECASTING=${FORECASTING:-"$PYTHON -m forecasting"}
WORK=${1:-$(mktemp -d)}
mkdir -p "$WORK"
cd "$WORK"
rm -rf forecasting.toml stores.db store ./*.csv ./*.log report.html

header() { printf '\n==== %s\n' "$*"; }
run() { echo "\$ forecasting $*"; $FORECASTING --config forecasting.toml "$@"; }

header "1. the configuration"
cat > forecasting.toml <<'TOML'
[database]
url = "sqlite:///stores.db"

[storage]
root = "store"

[source]
frequency = "D"
holidays = ["US"]

[models.stores]
horizon = 14          # lookback, season, batch size and min_epochs derived from the data
layers = [{ units = 16 }]
epochs = 8
calendar = true
intervals = [80, 95]
TOML
cat forecasting.toml

header "2. the data: 12 stores with a year of daily sales, 2 new stores with 16 and 20 days"
"$PYTHON" - <<'PY'
import holidays
import numpy as np
import pandas as pd

rng = np.random.default_rng(0)
week = np.array([0.85, 0.9, 0.95, 1.0, 1.1, 1.3, 0.9])
end = pd.Timestamp("2026-12-20")          # the 14-day horizon holds Christmas and New Year's Day
arriving = pd.date_range(end + pd.Timedelta(days=1), periods=4, freq="D")  # actuals that arrive later
us = holidays.country_holidays("US", years=range(2025, 2028))


def sales(ts, level):
    day = pd.DatetimeIndex(ts)
    factor = week[day.day_of_week] * rng.normal(1, 0.04, len(day))
    on = np.array([d in us for d in day.date])
    beside = np.array([(d - pd.Timedelta(days=1)).date() in us or (d + pd.Timedelta(days=1)).date() in us for d in day])
    factor = factor * np.where(on, 0.4, np.where(beside, 0.7, 1.0))  # 60% less on holidays, 30% the days beside
    return (level * factor).round(2)


parts, later = [], []
for name, days in [*((f"store-{i:02d}", 365) for i in range(12)), ("new-store-a", 16), ("new-store-b", 20)]:
    level = rng.uniform(100, 400)
    ts = pd.date_range(end=end, periods=days, freq="D")
    parts.append(pd.DataFrame({"series_id": name, "ts": ts, "value": sales(ts, level)}))
    later.append(pd.DataFrame({"series_id": name, "ts": arriving, "value": sales(arriving, level)}))
frame = pd.concat(parts, ignore_index=True)
frame.to_csv("sales.csv", index=False)
frame[frame.series_id.str.startswith("store-")].to_csv("established.csv", index=False)
actuals = pd.concat(later, ignore_index=True)
spike = (actuals.series_id == "store-03") & (actuals.ts == arriving[2])
actuals.loc[spike, "value"] = (actuals.loc[spike, "value"] * 10).round(2)   # the spike: 10x the usual sales
actuals.to_csv("actuals.csv", index=False)
print(frame.groupby("series_id").ts.agg(["count", "min", "max"]).to_string())
print(f"US holidays in the horizon {end + pd.Timedelta(days=1):%Y-%m-%d} .. {end + pd.Timedelta(days=14):%Y-%m-%d}:",
      ", ".join(f"{d} {n}" for d, n in sorted(us.items()) if end < pd.Timestamp(d) <= end + pd.Timedelta(days=14)))
print(f"later actuals: {len(actuals)} rows, {arriving[0]:%Y-%m-%d} .. {arriving[-1]:%Y-%m-%d}; the spike: store-03 {arriving[2]:%Y-%m-%d}",
      actuals.loc[spike, "value"].iloc[0])
PY

header "3a. the 12 established stores alone: the lookback they derive"
run init > /dev/null
run load established.csv
run check > check-established.log 2>&1 || true
grep -E "lookback" check-established.log || true
rm -rf stores.db store

header "3b. all 14 stores: init, load, check, retrain"
run init
run load sales.csv
run check > check.log 2>&1 || { cat check.log; exit 1; }
grep -E "lookback|series on the" check.log || true
run run --model stores --mode retrain 2> retrain.log || { cat retrain.log >&2; exit 1; }

header "3c. from the tables: method per store, the version's lookback, the holiday inputs"
"$PYTHON" - <<'PY'
import json
import pathlib
import re
import sqlite3

import pandas as pd

db = sqlite3.connect("stores.db")
methods = pd.read_sql("SELECT series_id, method, COUNT(*) AS rows FROM forecast_latest WHERE model_name = 'stores' "
                      "GROUP BY series_id, method ORDER BY series_id", db)
print("forecast_latest: method per store")
print(methods.to_string(index=False))
by_store = dict(zip(methods.series_id, methods.method))
assert len(methods) == 14 and (methods.rows == 14).all(), methods
assert by_store["new-store-a"] == "short_history", by_store          # 16 days < lookback
assert by_store["new-store-b"] in ("short_history", "network"), by_store
assert all(by_store[f"store-{i:02d}"] == "network" for i in range(12)), by_store

version, path, watermark = db.execute("SELECT version, artifact_path, data_watermark FROM model_versions "
                                      "WHERE model_name = 'stores' ORDER BY version DESC").fetchone()
manifest = json.loads((pathlib.Path(path) / "manifest.json").read_text())
lookback = manifest["config"]["lookback"]
alone = re.search(r"lookback (\d+)", pathlib.Path("check-established.log").read_text())
print(f"version v{version} (data to {watermark}): lookback {lookback}; the 12 established stores alone derive lookback",
      alone.group(1) if alone else "?")
assert alone and int(alone.group(1)) == lookback, "the new stores changed the established stores' lookback"
assert lookback > 16, lookback

print("manifest holidays:", manifest.get("holidays"))
assert [code.upper() for code in manifest.get("holidays") or []] == ["US"], manifest.get("holidays")

latest = pd.read_sql("SELECT series_id, target_ts, yhat FROM forecast_latest WHERE model_name = 'stores' "
                     "AND series_id LIKE 'store-%'", db, parse_dates=["target_ts"])
# Each established store's forecast over its own weekly mean (a holiday's drop shows whatever the store's level).
latest["ratio"] = latest.yhat / latest.groupby("series_id").yhat.transform("mean")
daily = latest.groupby(latest.target_ts.dt.strftime("%Y-%m-%d %a")).ratio.mean()
print("established stores' forecast over their 14-day mean, per day (holidays 12-25 and 01-01 marked):")
for day, ratio in daily.items():
    print(f"   {day}  {ratio:5.2f}", "<- holiday" if day[5:10] in ("12-25", "01-01") else "")
holiday = daily[[d for d in daily.index if d[5:10] in ("12-25", "01-01")]].mean()
others = daily[[d for d in daily.index if d[5:10] not in ("12-24", "12-25", "12-26", "12-31", "01-01", "01-02")]].mean()
print(f"holidays {holiday:.2f} vs ordinary days {others:.2f}")
assert holiday < 0.85 * others, "the holiday inputs did not lower the holiday forecasts"
PY

header "4. four days of actuals arrive, one a spike (store-03, 10x): a forecast run scores them"
run load actuals.csv
run run --model stores --mode forecast 2> forecast.log || { cat forecast.log >&2; exit 1; }
"$PYTHON" - <<'PY'
import sqlite3

import pandas as pd

db = sqlite3.connect("stores.db")
anomalies = pd.read_sql("SELECT series_id, target_ts, actual, yhat, lower_95, upper_95, interval_distance, direction, "
                        "model_version, forecast_origin, step, method FROM anomalies WHERE model_name = 'stores' "
                        "ORDER BY interval_distance DESC", db)
print(f"view anomalies: {len(anomalies)} rows, the three farthest out:")
print(anomalies.head(3).to_string(index=False))
spike = anomalies[(anomalies.series_id == "store-03") & anomalies.target_ts.str.startswith("2026-12-23")]
assert len(spike) == 1 and spike.direction.iloc[0] == "above" and spike.interval_distance.iloc[0] > 10, anomalies
assert anomalies.series_id.iloc[0] == "store-03", "the spike is not the farthest out"
scored = db.execute("SELECT COUNT(*) FROM forecast_errors WHERE model_name = 'stores'").fetchone()[0]
print(f"forecast_errors: {scored} scored rows")
assert scored >= 14 * 4, scored
PY

header "5. the report and the Parquet dataset"
run report --model stores --output report.html --series new-store-a new-store-b
echo "report: $WORK/report.html (each run also writes $WORK/store/reports/stores/latest.html)"
"$PYTHON" - <<'PY'
import re

html = re.sub(r"\s+", " ", open("report.html", encoding="utf-8").read())
facts = {
    "the anomalies table": "<h2>Anomalies</h2>",
    "the spike's row": '<td class="text">store-03</td><td class="text">2026-12-23</td>',
    "the method line": "Newest forecasts by method: network 14 series",
    "the new store's method": "Series new-store-a forecast by short_history from origin 2026-12-20, network from origin 2026-12-24",
}
for name, text in facts.items():
    assert text in html, f"the report lacks {name}: {text}"
    print(f"  the report has {name}: {text}")
PY
"$PYTHON" - <<'PY'
import pandas as pd

forecasts = pd.read_parquet("store/forecasts", filters=[("model_name", "=", "stores")])
forecasts["origin_date"] = forecasts["origin_date"].astype(str)
counts = forecasts.groupby(["origin_date", "method"], observed=True).series_id.nunique().rename("series")
print("Parquet forecasts: series per origin and method")
print(counts.to_string())
first = counts.loc["2026-12-20"]
assert first.sum() == 14 and first.get("short_history", 0) >= 1, counts
new = forecasts[forecasts.series_id.str.startswith("new-")].groupby(["series_id", "origin_date"]).method.first()
print(new.to_string())
PY
header "all checks passed"
