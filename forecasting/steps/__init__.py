"""The steps of one run, as plain functions that take validated `Settings` and return small typed values.

`flows/` wraps each step in a Prefect task; the CLI and tests can call them directly too. Heavy
objects (frames, networks) stay inside a step; steps hand each other ids, paths, counts and frozen
dataclasses, turned into plain data (`as_dict()`) only at the flow's boundary.

    data        the engine and the pulled history as regular series (`prepare_data`)
    ingestion   `pull_step` (returns a `PullResult`), `commit_pull`
    runs        the `runs` row: `start_run`, `finish_run`, `fail_run`, `check_schema`
    mode        the mode policy: `choose_mode` (pure) and `decide_mode` (gathers the facts)
    gate        the promotion gate: `apply_gate` (pure)
    training    `train_step`: retrain or fine-tune, gate, register
    forecasts   `forecast_step` and the SQL and Parquet writes
    tuning      `tune_step`; backtests: `backtest_step`
    summaries   `RunSummary`, `summarise`, and the text a person reads
    accuracy    `score_step`: stored forecasts scored as actuals arrive (forecast_errors); live accuracy
"""

from forecasting.history.pull_result import PullResult
from forecasting.steps.scoring import ScoringSummary, live_markdown, report_link, report_step, score_step, with_accuracy
from forecasting.steps.backtest import BacktestSummary, backtest_step
from forecasting.steps.data import PreparedData, open_engine, prepare_data
from forecasting.steps.forecasts import ForecastSummary, forecast_step, repair_parquet_step, write_parquet_step, write_sql_step
from forecasting.steps.gate import GateFacts, GateResult, apply_gate
from forecasting.steps.pull import commit_pull, pull_step
from forecasting.steps.mode import MODES, Mode, ModeDecision, ModeFacts, choose_mode, decide_mode
from forecasting.steps.run_records import check_schema, fail_run, finish_run, start_run
from forecasting.steps.summaries import RunSummary, Writes, format_summary, format_tuning, scores_table, summarise, summary_json
from forecasting.steps.train import TrainSummary, train_step
from forecasting.steps.tune import TuneSummary, tune_step

__all__ = [
    "MODES", "BacktestSummary", "ForecastSummary", "GateFacts", "GateResult", "Mode", "ModeDecision", "ModeFacts", "PreparedData",
    "PullResult", "RunSummary", "ScoringSummary", "TrainSummary", "TuneSummary", "Writes", "apply_gate", "backtest_step",
    "check_schema", "choose_mode", "commit_pull", "decide_mode", "fail_run", "finish_run", "forecast_step", "format_summary",
    "format_tuning", "live_markdown", "open_engine", "prepare_data", "pull_step", "repair_parquet_step", "report_link", "report_step",
    "score_step", "scores_table", "start_run", "summarise", "summary_json", "train_step", "tune_step", "with_accuracy",
    "write_parquet_step", "write_sql_step",
]
