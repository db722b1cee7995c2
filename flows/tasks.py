"""What every flow shares: the task options for database work, and `recorded_runs`, the one context
manager for the locks, the `runs` rows and their end (completed or failed) of a flow run."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.runtime import deployment, flow_run
from prefect.tasks import exponential_backoff

from flows.logs import forward_library_logs
from forecasting import steps
from forecasting.config.credentials import masked_error
from forecasting.config.settings import Settings
from forecasting.errors import ForecastingError
from forecasting.runtime.orchestrator import die_with_serve
from forecasting.sources.locking import model_lock


def transient_failure(_task: Any, _task_run: Any, state: Any) -> bool:
    """Retry unexpected errors (a dropped connection); never our own clear errors (bad config, bad data)."""
    try:
        error = state.result(raise_on_failure=False)
    except Exception:  # noqa: BLE001
        return True
    return not isinstance(error, ForecastingError)


def masked_errors(function: Callable[..., Any]) -> Callable[..., Any]:
    """`function`, whose errors leave it with the database password masked (`database.masked_error`),
    so that Prefect's state messages and logs of a failed task or flow never hold it."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except Exception as error:
            masked = masked_error(error)
            if masked is error:
                raise
            raise masked from None

    return wrapper


def job_task(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """`prefect.task(**options)` over `masked_errors(function)`."""
    return lambda function: task(**options)(masked_errors(function))


plain_task = job_task(cache_policy=NO_CACHE, persist_result=False)
db_task = job_task(
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_condition_fn=transient_failure,
)


@db_task
def record_start(settings: Settings, model: str, mode: str, context: tuple[str | None, str | None, str]) -> str:
    """Record a running row in `runs` after checking config and schema; returns the run id."""
    return steps.start_run(settings, model, mode, *context)


@db_task
def record_finish(settings: Settings, run_id: str, summary: dict[str, Any], staged: str | None) -> None:
    """Mark the run completed with its counts."""
    steps.finish_run(settings, run_id, summary, staged)


@db_task
def pull_source(settings: Settings, run_id: str, full_refresh: bool, allow_series_drop: bool = False) -> steps.PullResult:
    """Pull new source rows into the history store (quarantining unusable ones)."""
    return steps.pull_step(settings, run_id, full_refresh, allow_series_drop)


@db_task
def commit_source_pull(settings: Settings, run_id: str, pulled: steps.PullResult) -> None:
    """Advance the source watermark once the run's outputs are committed."""
    steps.commit_pull(settings, run_id, pulled)


def run_context() -> tuple[str | None, str | None, str]:
    """(flow run id, deployment name, trigger): `scheduled` for runs the scheduler created, else `manual`."""
    run_id = flow_run.id
    if not run_id:
        return None, None, "manual"
    trigger = "manual"
    if deployment.id:
        with get_client(sync_client=True) as client:
            if client.read_flow_run(run_id).auto_scheduled:
                trigger = "scheduled"
    return str(run_id), deployment.name, trigger


class RecordedRuns:
    """The `runs` rows of one flow run, by model; `finish` marks one completed."""

    def __init__(self, settings: Settings, run_ids: dict[str, str]) -> None:
        self.settings, self.run_ids = settings, run_ids
        self.finished: set[str] = set()

    def finish(self, model: str, summary: dict[str, Any], staged: str | None = None) -> None:
        """Mark the model's run completed with `summary`'s counts (and remove its staged file)."""
        record_finish(self.settings, self.run_ids[model], summary, staged)
        self.finished.add(model)


@contextlib.contextmanager
def recorded_runs(settings: Settings, models: list[str], mode: str) -> Iterator[RecordedRuns]:
    """Hold every model's lock (taken in sorted order, so two runs over several models cannot
    deadlock), record a `running` row per model, and on any error mark the runs not yet finished
    as failed before the error goes on. The training time limit is enforced inside training and
    tuning (forecasting.model.training.Deadline), not by a task timeout, which cannot interrupt a thread."""
    die_with_serve()  # a flow run `forecasting serve` started ends with it
    logger = get_run_logger()
    forward_library_logs()
    context = run_context()
    with contextlib.ExitStack() as locks:
        for model in sorted(models):
            timeout = settings.model(model).lock_timeout_minutes * 60
            waited = locks.enter_context(model_lock(steps.open_engine(settings), settings.storage_root, model, timeout))
            if waited > 1:
                logger.info(f"waited {waited:.0f} s for another run of model {model} to finish")
        records = RecordedRuns(settings, {model: record_start(settings, model, mode, context) for model in sorted(models)})
        try:
            yield records
        except BaseException as error:
            for model, run_id in records.run_ids.items():
                if model not in records.finished:
                    steps.fail_run(settings, run_id, error)
            masked = masked_error(error) if isinstance(error, Exception) else error
            if masked is error:
                raise
            raise masked from None


def single_step_run(settings: Settings, model: str, mode: str, step: Any, *args: Any) -> Any:
    """One run of a single-step flow (tune, backtest): the recorded run, a pull, the step task (its
    result has a `reason()`), the run finished and the pull committed."""
    with recorded_runs(settings, [model], mode) as records:
        run_id = records.run_ids[model]
        pulled = pull_source(settings, run_id, False)
        result = step(settings, model, run_id, *args)
        records.finish(model, {"mode": mode, "reason": result.reason(), "pull": pulled.as_dict()})
        commit_source_pull(settings, run_id, pulled)
    return result
