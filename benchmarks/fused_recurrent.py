"""Hand-written recurrent layers for `benchmarks/recurrent_kernels.py` (not used by the job): Keras's GRU
(reset_after) and LSTM on the same weights, the input projection done for all steps in one matmul, the
steps unrolled, and backpropagation through time written out (`tf.custom_gradient`) with the weight
gradients as one matmul over all steps, as cuDNN does on GPUs. Measured slower than Keras's own loop
under XLA on CPU (benchmarks/results/2026-11-26-training-throughput.md)."""

from __future__ import annotations

import tensorflow as tf


def _split(a: tf.Tensor, n: int) -> list[tf.Tensor]:
    return tf.split(a, n, axis=-1)


def gru_sequence(x: tf.Tensor, kernel: tf.Tensor, recurrent_kernel: tf.Tensor, bias: tf.Tensor, return_sequences: bool) -> tf.Tensor:
    """Keras's GRU (reset_after, tanh, sigmoid gates, zero initial state) over `x` (batch, steps, inputs)."""
    steps = x.shape[1]

    @tf.custom_gradient
    def run(x, kernel, recurrent_kernel, bias):
        xt = tf.transpose(x, [1, 0, 2])
        proj = tf.einsum("tbi,ij->tbj", xt, kernel) + bias[0]
        h = tf.zeros([tf.shape(x)[0], tf.shape(recurrent_kernel)[0]], x.dtype)
        prev, zs, rs, hhs, ihs, outs = [], [], [], [], [], []
        for t in range(steps):
            inner = tf.matmul(h, recurrent_kernel) + bias[1]
            xz, xr, xh = _split(proj[t], 3)
            iz, ir, ih = _split(inner, 3)
            z = tf.sigmoid(xz + iz)
            r = tf.sigmoid(xr + ir)
            hh = tf.tanh(xh + r * ih)
            prev.append(h)
            zs.append(z)
            rs.append(r)
            hhs.append(hh)
            ihs.append(ih)
            h = z * h + (1 - z) * hh
            outs.append(h)
        out = tf.stack(outs, axis=1) if return_sequences else h

        def grad(dout):
            dh = tf.zeros_like(h)
            d_inner, d_proj = [None] * steps, [None] * steps
            for t in reversed(range(steps)):
                if return_sequences:
                    dh = dh + dout[:, t]
                elif t == steps - 1:
                    dh = dout
                z, r, hh, ih, hp = zs[t], rs[t], hhs[t], ihs[t], prev[t]
                da_h = dh * (1 - z) * (1 - hh * hh)
                da_z = dh * (hp - hh) * z * (1 - z)
                da_r = da_h * ih * r * (1 - r)
                di = tf.concat([da_z, da_r, da_h * r], axis=-1)
                d_inner[t] = di
                d_proj[t] = tf.concat([da_z, da_r, da_h], axis=-1)
                dh = dh * z + tf.matmul(di, recurrent_kernel, transpose_b=True)
            DI, DP, HP = tf.stack(d_inner), tf.stack(d_proj), tf.stack(prev)
            d_rk = tf.einsum("tbu,tbj->uj", HP, DI)
            d_k = tf.einsum("tbi,tbj->ij", xt, DP)
            d_b = tf.stack([tf.reduce_sum(DP, [0, 1]), tf.reduce_sum(DI, [0, 1])])
            dx = tf.transpose(tf.einsum("tbj,ij->tbi", DP, kernel), [1, 0, 2])
            return dx, d_k, d_rk, d_b

        return out, grad

    return run(x, kernel, recurrent_kernel, bias)


def lstm_sequence(x: tf.Tensor, kernel: tf.Tensor, recurrent_kernel: tf.Tensor, bias: tf.Tensor, return_sequences: bool) -> tf.Tensor:
    """Keras's LSTM (tanh, sigmoid gates, zero initial states) over `x` (batch, steps, inputs)."""
    steps = x.shape[1]

    @tf.custom_gradient
    def run(x, kernel, recurrent_kernel, bias):
        xt = tf.transpose(x, [1, 0, 2])
        proj = tf.einsum("tbi,ij->tbj", xt, kernel) + bias
        zeros = tf.zeros([tf.shape(x)[0], tf.shape(recurrent_kernel)[0]], x.dtype)
        h, c = zeros, zeros
        hprev, cprev, gates, tcs, outs = [], [], [], [], []
        for t in range(steps):
            a = proj[t] + tf.matmul(h, recurrent_kernel)
            ai, af, ag, ao = _split(a, 4)
            i, f, g, o = tf.sigmoid(ai), tf.sigmoid(af), tf.tanh(ag), tf.sigmoid(ao)
            hprev.append(h)
            cprev.append(c)
            c = f * c + i * g
            tc = tf.tanh(c)
            h = o * tc
            gates.append((i, f, g, o))
            tcs.append(tc)
            outs.append(h)
        out = tf.stack(outs, axis=1) if return_sequences else h

        def grad(dout):
            dh, dc = tf.zeros_like(h), tf.zeros_like(h)
            das = [None] * steps
            for t in reversed(range(steps)):
                if return_sequences:
                    dh = dh + dout[:, t]
                elif t == steps - 1:
                    dh = dout
                (i, f, g, o), tc = gates[t], tcs[t]
                dc = dc + dh * o * (1 - tc * tc)
                da = tf.concat([dc * g * i * (1 - i), dc * cprev[t] * f * (1 - f), dc * i * (1 - g * g), dh * tc * o * (1 - o)], axis=-1)
                das[t] = da
                dc = dc * f
                dh = tf.matmul(da, recurrent_kernel, transpose_b=True)
            DA, HP = tf.stack(das), tf.stack(hprev)
            d_rk = tf.einsum("tbu,tbj->uj", HP, DA)
            d_k = tf.einsum("tbi,tbj->ij", xt, DA)
            d_b = tf.reduce_sum(DA, [0, 1])
            dx = tf.transpose(tf.einsum("tbj,ij->tbi", DA, kernel), [1, 0, 2])
            return dx, d_k, d_rk, d_b

        return out, grad

    return run(x, kernel, recurrent_kernel, bias)

