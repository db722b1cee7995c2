"""The training time limit: a Keras callback that stops `fit` between batches once the limit has passed."""

from __future__ import annotations

import time
from typing import Any

import keras

from forecasting.errors import RunError


def monotonic() -> float:
    """The clock deadlines are measured on (a seam for tests)."""
    return time.monotonic()


class TrainingTimeout(RunError):
    """Training ran past `training_timeout_minutes`."""


def timeout_message(minutes: float, what: str = "training") -> str:
    """The one line a run past its training time limit fails with."""
    return (
        f"{what} stopped: it ran longer than the limit of {minutes:g} minutes "
        "(models.<name>.training_timeout_minutes); raise the limit or train a smaller model"
    )


class Deadline(keras.callbacks.Callback):
    """Stops `fit` once `minutes` have passed since `start()` by raising `TrainingTimeout` between
    batches (a Prefect task timeout cannot interrupt a training thread; this can)."""

    def __init__(self, minutes: float, what: str = "training", error: type[RunError] = TrainingTimeout) -> None:
        super().__init__()
        self.minutes, self.what, self.error = minutes, what, error
        self.at: float | None = None

    def start(self) -> "Deadline":
        """Start the clock (once; later calls keep the first deadline)."""
        if self.at is None:
            self.at = monotonic() + self.minutes * 60
        return self

    def check(self) -> None:
        """Raise `TrainingTimeout` when the deadline has passed."""
        if self.at is not None and monotonic() >= self.at:
            raise self.error(timeout_message(self.minutes, self.what))

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.check()
