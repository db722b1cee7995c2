"""The job's tables (SQLAlchemy Core definitions; migrations in sql/migrations create them) and their keys."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# Default source table; users may point `source.*` at any table with equivalent columns.
observations = sa.Table(
    "observations",
    metadata,
    sa.Column("series_id", sa.String(200), primary_key=True),
    sa.Column("ts", sa.DateTime(), primary_key=True),
    sa.Column("value", sa.Float(), nullable=True),
)

FORECAST_KEY = ("model_name", "series_id", "forecast_origin", "target_ts")

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("model_name", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer(), primary_key=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("run_id", sa.String(64)),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("cell", sa.String(10), nullable=False),
    sa.Column("artifact_path", sa.Text(), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("format_version", sa.Integer(), nullable=False),
    sa.Column("data_watermark", sa.DateTime()),
    sa.Column("train_start", sa.DateTime()),
    sa.Column("train_end", sa.DateTime()),
    sa.Column("parent_version", sa.Integer()),
    sa.Column("metrics", sa.Text()),
    sa.Column("mode", sa.String(20)),
    sa.Column("holdout_metric", sa.String(20)),
    sa.Column("holdout_score", sa.Float()),
    sa.Column("champion_score", sa.Float()),
    sa.Column("baseline_score", sa.Float()),
    sa.Column("decision", sa.Text()),
    sa.Column("tuning_record", sa.Integer()),
)

model_events = sa.Table(
    "model_events",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("model_name", sa.String(64), nullable=False),
    sa.Column("event", sa.String(20), nullable=False),
    sa.Column("from_version", sa.Integer()),
    sa.Column("to_version", sa.Integer()),
    sa.Column("at", sa.DateTime(), nullable=False),
    sa.Column("reason", sa.Text()),
)

tuning_records = sa.Table(
    "tuning_records",
    metadata,
    sa.Column("model_name", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer(), primary_key=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("run_id", sa.String(64)),
    sa.Column("tuner", sa.String(20), nullable=False),
    sa.Column("hyperparameters", sa.Text(), nullable=False),
    sa.Column("best_score", sa.Float()),
    sa.Column("trials", sa.Integer()),
    sa.Column("directory", sa.Text()),
)

model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("model_name", sa.String(64), primary_key=True),
    sa.Column("alias", sa.String(32), primary_key=True),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("model_name", sa.String(64), nullable=False),
    sa.Column("flow_run_id", sa.String(64)),
    sa.Column("mode", sa.String(20), nullable=False),
    sa.Column("reason", sa.Text()),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("started_at", sa.DateTime(), nullable=False),
    sa.Column("finished_at", sa.DateTime()),
    sa.Column("champion_version", sa.Integer()),
    sa.Column("produced_version", sa.Integer()),
    sa.Column("series_read", sa.Integer()),
    sa.Column("series_forecast", sa.Integer()),
    sa.Column("series_skipped", sa.Integer()),
    sa.Column("rows_sql", sa.Integer()),
    sa.Column("rows_parquet", sa.Integer()),
    sa.Column("error", sa.Text()),
    sa.Column("deployment", sa.String(200)),
    sa.Column("trigger", sa.String(20)),
    sa.Column("duration_seconds", sa.Float()),
    sa.Column("rows_pulled", sa.Integer()),
    sa.Column("new_series", sa.Integer()),
    sa.Column("revised_values", sa.Integer()),
    sa.Column("quarantined", sa.Integer()),
)

ingestion_state = sa.Table(
    "ingestion_state",
    metadata,
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("watermark", sa.DateTime()),
    sa.Column("frequency", sa.String(20)),
    sa.Column("columns", sa.Text()),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
    sa.Column("run_id", sa.String(64)),
)

# What the last committed pull saw of each series in the source, so the next pull reads only what changed.
ingestion_series = sa.Table(
    "ingestion_series",
    metadata,
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("series_id", sa.String(200), primary_key=True),
    sa.Column("source_rows", sa.Integer(), nullable=False),  # count(*) of the series in the source
    sa.Column("source_first", sa.DateTime()),  # its min(ts) and max(ts) there (UTC)
    sa.Column("source_last", sa.DateTime()),
    sa.Column("reread_from", sa.DateTime()),  # the next pull re-reads rows after this (null: the whole series)
    sa.Column("rows_before", sa.Integer()),  # source rows at or before reread_from (a re-read checks it)
    sa.Column("source_sum", sa.Float()),  # sum(value) of the series in the source: a revision anywhere changes it
    sa.Column("sum_before", sa.Float()),  # sum(value) at or before reread_from (a re-read checks it)
    sa.Column("last_ts", sa.DateTime()),  # newest usable observation in the history store
    sa.Column("updated_at", sa.DateTime(), nullable=False),
    sa.Column("run_id", sa.String(64)),
)

backtests = sa.Table(
    "backtests",
    metadata,
    sa.Column("backtest_id", sa.String(32), primary_key=True),
    sa.Column("window_number", sa.Integer(), primary_key=True),  # 1 = oldest origin; 0 = all windows together
    sa.Column("method", sa.String(20), primary_key=True),  # model, naive, seasonal_naive
    sa.Column("step", sa.Integer(), primary_key=True),  # 1..horizon; 0 = all steps together
    sa.Column("model_name", sa.String(64), nullable=False),
    sa.Column("model_version", sa.Integer()),  # the champion when it ran, for reference; the backtest trains its own
    sa.Column("run_id", sa.String(64)),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("forecast_origin", sa.DateTime()),
    sa.Column("windows", sa.Integer(), nullable=False),
    sa.Column("step_size", sa.Integer(), nullable=False),
    sa.Column("series", sa.Integer()),
    sa.Column("mae", sa.Float()),
    sa.Column("rmse", sa.Float()),
    sa.Column("smape", sa.Float()),
    sa.Column("mase", sa.Float()),
    sa.Column("intervals", sa.Text()),  # JSON {"80": {"coverage": percent, "width": mean width / MASE scale}, ...}
)

# One row per unusable source row (source, series_id, ts, reason), however often pulls re-read it
# (forecasting.history.quarantine); row_key is its NULL-safe digest, unique per source.
quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False),  # the run that first quarantined it
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("series_id", sa.String(200)),
    sa.Column("ts", sa.DateTime()),
    sa.Column("value", sa.Text()),  # as last seen
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),  # first seen
    sa.Column("row_key", sa.String(64), nullable=False),
    sa.Column("last_run_id", sa.String(64), nullable=False),
    sa.Column("last_seen_at", sa.DateTime(), nullable=False),
    sa.Column("seen_count", sa.Integer(), nullable=False),  # pulls that quarantined it
    sa.Column("resolved_run_id", sa.String(64)),  # the pull that re-read it and found it usable (or gone)
    sa.Column("resolved_at", sa.DateTime()),  # null while it is current
    sa.Index("ux_quarantine_source_row", "source", "row_key", unique=True),
)


def interval_columns(level: int) -> tuple[str, str]:
    """The forecasts columns holding the lower and upper bound of a `level`% interval."""
    return f"yhat_lower_{level}", f"yhat_upper_{level}"


# One row per stored forecast row whose actual has arrived: its errors, and the seasonal-naive forecast
# from the same origin scored the same way (`naive_*`). Keyed like `forecasts`; a revised actual or a
# rewritten forecast re-scores its row.
forecast_errors = sa.Table(
    "forecast_errors",
    metadata,
    sa.Column("model_name", sa.String(64), primary_key=True),
    sa.Column("model_version", sa.Integer(), nullable=False),
    sa.Column("series_id", sa.String(200), primary_key=True),
    sa.Column("forecast_origin", sa.DateTime(), primary_key=True),
    sa.Column("target_ts", sa.DateTime(), primary_key=True),
    sa.Column("step", sa.Integer(), nullable=False),
    sa.Column("yhat", sa.Float(), nullable=False),
    sa.Column("actual", sa.Float(), nullable=False),
    sa.Column("error", sa.Float(), nullable=False),  # actual - yhat
    sa.Column("abs_error", sa.Float(), nullable=False),
    sa.Column("smape_term", sa.Float(), nullable=False),  # 200 |e| / (|actual| + |yhat|); 0/0 counts as 0
    sa.Column("scale", sa.Float()),  # in-sample seasonal-naive MAE of the series up to the forecast origin
    sa.Column("scaled_error", sa.Float()),  # abs_error / scale: MASE when averaged
    sa.Column("inside_80", sa.Boolean()),
    sa.Column("inside_95", sa.Boolean()),
    sa.Column("naive_yhat", sa.Float()),
    sa.Column("naive_error", sa.Float()),
    sa.Column("naive_abs_error", sa.Float()),
    sa.Column("naive_smape_term", sa.Float()),
    sa.Column("naive_scaled_error", sa.Float()),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("scored_at", sa.DateTime(), nullable=False),
    # How far the actual lies outside the 95% interval in half-widths of it (0 inside; NULL without a band or with
    # a zero-width one), and whether it is an anomaly: outside that band of the newest origin's forecast for the
    # period (true/false on that row only, NULL on older origins' rows and where the 95% interval is missing).
    sa.Column("interval_distance", sa.Float()),
    sa.Column("anomaly", sa.Boolean()),
)
