#!/usr/bin/env bash
# Cold start through the CLI: 12 stores with a year of daily sales and 2 new stores with 16 and 20 days.
# Checks the derived lookback with and without the new stores (`forecasting check`), runs a retrain and
# prints each store's forecast method and the lookback the version was trained with, from the tables.
#
#   docs/examples/cold_start_demo.sh [WORKDIR]      (FORECASTING, PYTHON: the commands to use)
set -euo pipefail
PYTHON=${PYTHON:-python}
FORECASTING=${FORECASTING:-"$PYTHON -m forecasting"}
WORK=${1:-$(mktemp -d)}
mkdir -p "$WORK"
cd "$WORK"

cat > forecasting.toml <<'TOML'
[database]
url = "sqlite:///stores.db"

[storage]
root = "store"

[source]
frequency = "D"

[models.stores]
horizon = 14          # lookback, season, batch size and min_epochs derived from the data
layers = [{ units = 16 }]
epochs = 8
calendar = true
intervals = [80, 95]
TOML

"$PYTHON" - <<'PY'
import numpy as np
import pandas as pd

rng = np.random.default_rng(0)
week = np.array([0.85, 0.9, 0.95, 1.0, 1.1, 1.3, 0.9])
end = pd.Timestamp("2026-11-30")
parts = []
for name, days in [*((f"store-{i:02d}", 365) for i in range(12)), ("new-store-a", 16), ("new-store-b", 20)]:
    ts = pd.date_range(end=end, periods=days, freq="D")
    values = rng.uniform(100, 400) * week[ts.day_of_week] * rng.normal(1, 0.05, days)
    parts.append(pd.DataFrame({"series_id": name, "ts": ts, "value": values.round(2)}))
frame = pd.concat(parts, ignore_index=True)
frame.to_csv("sales.csv", index=False)
frame[frame.series_id.str.startswith("store-")].to_csv("established.csv", index=False)
PY

run() { echo "\$ forecasting $*"; $FORECASTING --config forecasting.toml "$@"; }

echo "== the 12 established stores alone"
run init > /dev/null
run load established.csv
run check 2>&1 | grep -E "lookback|series" || true
rm -rf stores.db store

echo "== with the 2 new stores"
run init > /dev/null
run load sales.csv
run check 2>&1 | grep -E "lookback|series" || true
run run --model stores --mode retrain 2> run.log

echo "== from the tables"
"$PYTHON" - <<'PY'
import json, sqlite3
db = sqlite3.connect("stores.db")
print("forecast_latest: series, method, rows")
for row in db.execute("SELECT series_id, method, COUNT(*) FROM forecast_latest GROUP BY series_id, method ORDER BY series_id"):
    print("  ", *row)
print("lookback of the version trained:", end=" ")
version = db.execute("SELECT artifact_path FROM model_versions WHERE model_name = 'stores' ORDER BY version DESC").fetchone()[0]
import pathlib
manifest = json.loads((pathlib.Path(version) / "manifest.json").read_text())
print(manifest["config"]["lookback"])
print("runs:", db.execute("SELECT series_read, series_forecast, series_skipped FROM runs ORDER BY started_at DESC").fetchone())
PY
