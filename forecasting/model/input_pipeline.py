"""The training input pipeline: seeded, reshuffled batches built by tf.data while the network trains."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def shuffled_batches(tensors: tuple[np.ndarray, ...], batch_size: int, seed: int) -> tf.data.Dataset:
    """Batches of `tensors` (equal first dimensions) in an order reshuffled each epoch with an explicit
    seed, independent of global random state; the next batches are prepared while one trains.

    The window indices are shuffled, not the windows: the shuffle draws the same permutation whatever
    the elements are, so the batches are those a shuffle of the windows themselves gave, but each is
    gathered at once instead of copied window by window through a buffer holding them all."""
    count = len(tf.nest.flatten(tensors)[0])
    # Nested: ((windows, future blocks), targets, ...) for a network with future inputs.
    constants = tf.nest.map_structure(tf.constant, tuple(tuple(t) if isinstance(t, list) else t for t in tensors))
    return (
        tf.data.Dataset.range(count)
        .shuffle(count, seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .map(lambda index: tf.nest.map_structure(lambda array: tf.gather(array, index), constants))
        .prefetch(tf.data.AUTOTUNE)
    )


def validation_batch_size(batch_size: int) -> int:
    """The batch size validation windows are evaluated in: the training batch size. Keras evaluates
    `validation_data` in batches of `validation_batch_size or batch_size`, and `fit` on a dataset has no
    `batch_size`, so without this it fell back to 32: 563 forward steps instead of 18 for 18,000
    validation windows, which took a third of each epoch's time (`benchmarks/train_throughput.py`)."""
    return batch_size
