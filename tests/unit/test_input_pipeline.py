"""The training input pipeline gives the batches the element-wise shuffle gave, epoch after epoch
(so trainings, and the M3 figures, are unchanged by it)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from forecasting.model.input_pipeline import shuffled_batches


def test_index_shuffle_gives_the_element_shuffle_batches() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2500, 6, 2)).astype("float32")
    y = rng.normal(size=(2500, 4)).astype("float32")
    w = rng.random(2500).astype("float32")
    element_wise = tf.data.Dataset.from_tensor_slices((x, y, w)).shuffle(2500, seed=7, reshuffle_each_iteration=True).batch(1024)
    gathered = shuffled_batches((x, y, w), 1024, 7)
    epochs_old, epochs_new = iter(element_wise.repeat(3)), iter(gathered.repeat(3))
    for _ in range(3 * 3):  # three epochs of three batches (1024, 1024, 452)
        old, new = next(epochs_old), next(epochs_new)
        assert len(old) == len(new) == 3
        for a, b in zip(old, new):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_an_epoch_holds_every_window_once() -> None:
    x = np.arange(100, dtype="float32")[:, None]
    first, second = ([float(v) for batch in shuffled_batches((x,), 32, 1) for v in batch[0].numpy().ravel()] for _ in range(2))
    assert sorted(first) == sorted(second) == list(range(100))
