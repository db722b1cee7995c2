"""The backtest step: a rolling-origin backtest of the model's config, scores stored in `backtests`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

from forecasting.config.settings import Settings
from forecasting.model.inputs import InputSpec
from forecasting.publishing.registry import champion_version, latest_tuning_record
from forecasting.runtime.clock import utc_now
from forecasting.sources.tables import backtests
from forecasting.steps.data import open_engine, prepare_data


@dataclass(frozen=True)
class BacktestSummary:
    """What `backtest_step` did: its id, windows, step and origins, the rows stored, the overall
    scores of the model and the baselines, interval coverage, training time and a printable table."""

    backtest_id: str
    windows: int
    step: int
    origins: list[str]
    rows: int
    smape: float
    mase: float
    seasonal_naive_smape: float
    naive_smape: float
    coverage: dict[int, float]
    train_seconds: float
    table: str

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain data (the backtest-model flow's result)."""
        return asdict(self)

    def reason(self) -> str:
        """The sentence the run's `runs` row keeps."""
        return (
            f"backtest: {self.windows} windows, sMAPE {self.smape:.2f} (seasonal naive {self.seasonal_naive_smape:.2f}), "
            f"MASE {self.mase:.3f}"
        )


def backtest_step(
    settings: Settings, model_name: str, run_id: str, windows: int, step: int | None = None, verbose: int = 0
) -> BacktestSummary:
    """Rolling-origin backtest of the model's config (tuned hyperparameters applied) on the pulled
    data, `windows` origins `step` periods apart (default: the horizon); the scores replace those of
    an identical earlier backtest in the `backtests` table."""
    from forecasting.model.backtesting import (  # lazy: keras, tensorflow
        backtest,
        backtest_id,
        format_scores,
        score_rows,
    )
    from forecasting.model.tuning import apply_hyperparameters  # lazy: keras, keras_tuner, tensorflow

    config = settings.model(model_name)
    step = step or config.horizon
    engine = open_engine(settings)
    with engine.connect() as connection:
        record = latest_tuning_record(connection, model_name)
        champion = champion_version(connection, model_name)
    effective = apply_hyperparameters(config, record[1]) if record is not None else config
    data = prepare_data(engine, settings, inputs=InputSpec.requested(settings.source, effective))
    result = backtest(data.arrays, effective, data.frequency, windows=windows, step=step, verbose=verbose)
    data_key = f"{data.rows_read}:{max(index[-1] for index in data.arrays.timestamps.values())}:{data.frequency}"
    # The input columns are part of the data (named only when set, so plain backtests keep their ids).
    data_key += "".join(f":{key}={sorted(getattr(settings.source, key))}" for key in ("features", "future_features", "holidays") if getattr(settings.source, key))
    identifier = backtest_id(model_name, effective, data_key, windows, step)
    created = utc_now()
    rows = [
        {**row, "backtest_id": identifier, "model_name": model_name, "model_version": champion, "run_id": run_id,
         "created_at": created, "windows": windows, "step_size": step}
        for row in score_rows(result.scores, effective.intervals)
    ]
    with engine.begin() as connection:
        connection.execute(sa.delete(backtests).where(backtests.c.backtest_id == identifier))
        connection.execute(sa.insert(backtests), rows)
    overall = result.scores[(result.scores["window"] == 0) & (result.scores["step"] == 0)].set_index("method")
    return BacktestSummary(
        backtest_id=identifier,
        windows=windows,
        step=step,
        origins=[origin.isoformat() for origin in result.origins],
        rows=len(rows),
        smape=float(overall.loc["model", "smape"]),
        mase=float(overall.loc["model", "mase"]),
        seasonal_naive_smape=float(overall.loc["seasonal_naive", "smape"]),
        naive_smape=float(overall.loc["naive", "smape"]),
        coverage={level: float(overall.loc["model", f"coverage_{level}"]) for level in effective.intervals},
        train_seconds=round(sum(result.train_seconds), 1),
        table=format_scores(result.scores, effective.intervals),
    )
