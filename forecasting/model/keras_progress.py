"""Keras callbacks that report training and prediction through `forecasting.runtime.progress.Progress`: batches
of all epochs (with early stopping the time left is an upper bound, said after the time to where early
stopping likely ends it) with the epoch, its loss and the last validation loss; and the series
predicted, batch by batch."""

from __future__ import annotations

from typing import Any

import keras

from forecasting.runtime.progress import Likely, Progress


class EpochProgress(keras.callbacks.Callback):
    """Progress of `fit`: batches done of epochs x batches per epoch, updated per batch (per execution
    with `steps_per_execution`), with the epoch and the losses in each line. With `early_stopping` the
    total is an upper bound; `likely_epochs` (`defaults.likely_epochs`) says where it likely ends."""

    def __init__(self, what: str = "train epochs", likely_epochs: int | None = None, early_stopping: bool = True, **options: Any) -> None:
        super().__init__()
        self.what, self.options = what, options
        self.likely_epochs, self.early_stopping = likely_epochs, early_stopping
        self.tracker: Progress | None = None
        self.epoch, self.steps, self.epochs = 0, None, 1
        self.val_loss: float | None = None

    def _note(self, logs: dict[str, Any] | None) -> str:
        note = f"epoch {self.epoch + 1}/{self.epochs}"
        if logs and "loss" in logs:
            note += f", loss {float(logs['loss']):.4g}"
        if self.val_loss is not None:
            note += f", val_loss {self.val_loss:.4g}"
        return note

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.epochs = int(self.params.get("epochs") or 1)
        self.steps = self.params.get("steps") or None
        per_epoch = self.steps or 1
        total, unit = (self.epochs * self.steps, "batches") if self.steps else (self.epochs, "epochs")
        likely = None
        if self.likely_epochs is not None and self.likely_epochs < self.epochs:
            likely = Likely(self.likely_epochs * per_epoch, f"early stopping likely ends it near epoch {self.likely_epochs} of {self.epochs}")
        bound = self.early_stopping and self.epochs > 1
        self.tracker = Progress(self.what, total, unit, bound=bound, likely=likely, **self.options).start()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.tracker is not None and self.steps:
            self.tracker.update(self.epoch * self.steps + batch + 1, self._note(logs))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs and logs.get("val_loss") is not None:
            self.val_loss = float(logs["val_loss"])
        if self.tracker is not None:
            done = (epoch + 1) * self.steps if self.steps else epoch + 1
            self.tracker.update(done, self._note(logs))

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.tracker is not None:
            ran = self.epoch + 1
            ended = f"stopped early after {ran}/{self.epochs} epochs" if ran < self.epochs else f"{ran}/{self.epochs} epochs"
            self.tracker.finish(ended + (f", last val_loss {self.val_loss:.4g}" if self.val_loss is not None else ""))


class PredictProgress(keras.callbacks.Callback):
    """Progress of `predict` over `count` windows (one per series when forecasting) in batches of `batch_size`."""

    def __init__(self, count: int, batch_size: int, what: str = "predict", unit: str = "windows", **options: Any) -> None:
        super().__init__()
        self.count, self.batch_size = count, batch_size
        self.tracker = Progress(what, count, unit, **options)

    def on_predict_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.tracker.start()

    def on_predict_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.tracker.update(min((batch + 1) * self.batch_size, self.count))

    def on_predict_end(self, logs: dict[str, Any] | None = None) -> None:
        self.tracker.update(self.count)
        self.tracker.finish()
