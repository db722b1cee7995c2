"""Recurrent kernels on CPU: one training step (forward and backward) of the same recurrent layer by
Keras's loop, by Keras's loop compiled with XLA, by a hand-written layer with backpropagation through
time written out (`benchmarks/fused_recurrent.py`, with and without XLA), by Keras's loop under the
`mixed_bfloat16` policy, and (LSTM) by TensorFlow's fused `BlockLSTMV2` kernel.

    .venv/bin/python -m benchmarks.recurrent_kernels [--batch 1024] [--steps 24] [--units 64] [--repeats 5]

What stands in the way of training twice as fast as plain Keras (issue 15) is the recurrent step
itself, which both paths run: this measures the alternatives on one batch shaped like the job's
(lookback 24, one input column, batch 1024). Each variant computes the same function from the same
weights (`max_abs_difference` of its output and gradients against Keras's loop is printed) and is
timed in alternation with the others, `--repeats` rounds of `--iterations` steps after a warm-up, so
a busy machine slows all of them alike. Prints one JSON line per variant: median seconds per step and
the ratio against Keras's loop (above 1: faster).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np
    import tensorflow as tf

    from benchmarks.fused_recurrent import gru_sequence, lstm_sequence

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(args.batch, args.steps, 1)).astype("float32"))
    y = tf.constant(rng.normal(size=(args.batch, args.units)).astype("float32"))
    variants = {}
    for cell in ("gru", "lstm"):
        layer = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM}[cell](args.units, seed=0)
        layer.build(x.shape)
        weights = list(layer.trainable_weights)

        def keras_loss(layer=layer):
            return tf.reduce_mean(tf.square(layer(x) - y))

        def written_loss(weights=weights, sequence={"gru": gru_sequence, "lstm": lstm_sequence}[cell]):
            return tf.reduce_mean(tf.square(sequence(x, *[w.value for w in weights], False) - y))

        variants[f"{cell} keras loop"] = (keras_loss, weights, False)
        variants[f"{cell} keras loop, XLA"] = (keras_loss, weights, True)
        variants[f"{cell} hand-written backward"] = (written_loss, weights, False)
        variants[f"{cell} hand-written backward, XLA"] = (written_loss, weights, True)
        # The same layer computing in bfloat16 (this CPU's avx512_bf16 doubles a matmul's rate), float32 weights.
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        half = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM}[cell](args.units, seed=0)
        keras.mixed_precision.set_global_policy("float32")
        half.build(x.shape)
        for target, source in zip(half.trainable_weights, weights):
            target.assign(source)

        def half_loss(layer=half):
            return tf.reduce_mean(tf.square(tf.cast(layer(x), "float32") - y))

        variants[f"{cell} keras loop, mixed_bfloat16"] = (half_loss, list(half.trainable_weights), False)

        def matmuls_only(recurrent=weights[1]):
            # The step's matmuls and nothing else: a bound on what any float32 kernel could reach.
            h = tf.zeros((args.batch, args.units))
            for t in range(args.steps):
                h = tf.matmul(h + x[:, t], recurrent)[:, : args.units]
            return tf.reduce_mean(tf.square(h - y))

        variants[f"{cell} matmuls alone (bound), XLA"] = (matmuls_only, [weights[1]], True)
        if cell == "lstm":
            kernel, recurrent, bias = weights

            def block_loss(kernel=kernel, recurrent=recurrent, bias=bias):
                zeros = tf.zeros((args.batch, args.units))
                no_peephole = tf.zeros(args.units)
                # BlockLSTMV2 takes Keras's gate order (i, f, c, o) and [kernel; recurrent_kernel] stacked.
                outputs = tf.raw_ops.BlockLSTMV2(
                    seq_len_max=tf.constant(args.steps, tf.int64), x=tf.transpose(x, [1, 0, 2]), cs_prev=zeros, h_prev=zeros,
                    w=tf.concat([kernel, recurrent], axis=0), wci=no_peephole, wcf=no_peephole, wco=no_peephole, b=bias,
                    cell_clip=0.0, use_peephole=False,
                )  # fmt: skip
                return tf.reduce_mean(tf.square(outputs[6][-1] - y))

            variants[f"{cell} fused BlockLSTMV2"] = (block_loss, weights, False)

    def training_step(loss, weights, xla):
        # The weights are closed over, not passed: tf.function would turn Keras variables given as
        # arguments into tensors the tape does not watch.
        def step():
            with tf.GradientTape() as tape:
                value = loss()
            return [value, *tape.gradient(value, weights)]

        return tf.function(step, jit_compile=xla)

    steps = {name: training_step(*variant) for name, variant in variants.items()}
    reference = {name: [t.numpy() for t in steps[name]()] for name in steps}
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for repeat in range(args.repeats):
        for name in steps if repeat % 2 == 0 else reversed(list(steps)):
            started = time.perf_counter()
            for _ in range(args.iterations):
                steps[name]()
            seconds[name].append((time.perf_counter() - started) / args.iterations)
    for name in steps:
        cell = name.split()[0]
        base = f"{cell} keras loop"
        difference = None if "bound" in name else max(float(np.abs(a - b).max()) for a, b in zip(reference[name], reference[base]))
        print(json.dumps({
            "benchmark": "recurrent_kernels", "variant": name, "batch": args.batch, "steps": args.steps, "units": args.units,
            "seconds_per_step": round(statistics.median(seconds[name]), 4),
            "speed_vs_keras_loop": round(statistics.median(seconds[base]) / statistics.median(seconds[name]), 2),
            "max_abs_difference": difference, "load_average": round(os.getloadavg()[0], 1),
        }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
