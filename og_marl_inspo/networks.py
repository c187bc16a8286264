"""Networks shared by every system: torsos, agentwise layers, masking, RNN unrolling.

Shapes: B batch, T time, N agents, O observation, A actions, E parallel episodes.

- `MASK_VALUE` and `masked_logits` are the one place illegal actions are masked
  (algorithms.md 1.2).
- `Torso` is the policy/value network of every system, in two families
  (algorithms.md 1.3): `mlp` (Linear-ReLU-Linear-ReLU-Linear, per time step) and `gru`
  (OG-MARL's Linear(64)-ReLU-GRU(64)-ReLU-Linear(out), unrolled over the window with
  the hidden state reset after terminal rows).
- Parameters are `shared` (one set, one-hot agent id appended: OG-MARL's
  `add_agent_id_to_obs`) or `agentwise` (one slice per agent, stacked, applied to all
  agents in one einsum): sequential per-agent updates need the latter.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import sonnet as snt
import tensorflow as tf

MASK_VALUE = -1e9


def masked_logits(logits: tf.Tensor, legals: tf.Tensor) -> tf.Tensor:
    """Push illegal actions (legals == 0) to MASK_VALUE; shapes (..., A)."""
    return tf.where(legals > 0, logits, MASK_VALUE * tf.ones_like(logits))


def agent_ids(num_agents: int, leading_shape) -> tf.Tensor:
    """One-hot agent ids broadcast to leading_shape + (N, N)."""
    eye = tf.eye(num_agents)
    return tf.broadcast_to(eye, tf.concat([leading_shape, [num_agents, num_agents]], 0))


class AgentwiseLinear(snt.Module):
    """N independent linear maps stored stacked: W (N, in, out), b (N, out).

    `(..., N, in) -> (..., N, out)` in one einsum; equals a Python loop of N
    `snt.Linear`s (tested).
    """

    def __init__(self, num_agents: int, output_size: int, name: Optional[str] = None) -> None:
        super().__init__(name=name)
        self.num_agents, self.output_size = num_agents, output_size
        self._built = False

    @snt.once
    def _build(self, input_size: int) -> None:
        init = snt.initializers.TruncatedNormal(stddev=1.0 / np.sqrt(input_size))
        self.w = tf.Variable(init([self.num_agents, input_size, self.output_size], tf.float32),
                             name="w")
        self.b = tf.Variable(tf.zeros([self.num_agents, self.output_size]), name="b")

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        self._build(int(x.shape[-1]))
        return tf.einsum("...ni,nio->...no", x, self.w) + self.b


class AgentwiseGRU(snt.Module):
    """A GRU cell per agent, gate weights stacked (N, in, 3H) and (N, H, 3H)."""

    def __init__(self, num_agents: int, hidden_size: int, name: Optional[str] = None) -> None:
        super().__init__(name=name)
        self.hidden_size = hidden_size
        self._inputs = AgentwiseLinear(num_agents, 3 * hidden_size, name="input_gates")
        self._hidden = AgentwiseLinear(num_agents, 3 * hidden_size, name="hidden_gates")

    def __call__(self, x: tf.Tensor, h: tf.Tensor):
        xi = self._inputs(x)
        hh = self._hidden(h)
        xr, xz, xn = tf.split(xi, 3, axis=-1)
        hr, hz, hn = tf.split(hh, 3, axis=-1)
        r = tf.sigmoid(xr + hr)
        z = tf.sigmoid(xz + hz)
        n = tf.tanh(xn + r * hn)
        h_new = (1.0 - z) * n + z * h
        return h_new, h_new


class Torso(snt.Module):
    """Per-agent network over (..., N, O) inputs, MLP or GRU, shared or agentwise.

    `unroll(inputs (B,T,N,O), resets (B,T))` -> (B,T,N,out) for training;
    `step(inputs (E,N,O), state)` -> ((E,N,out), state) for acting.
    """

    def __init__(self, kind: str, num_agents: int, output_size: int,
                 hidden_sizes: Sequence[int] = (64, 64), layout: str = "shared",
                 add_agent_id: bool = True, name: Optional[str] = None) -> None:
        super().__init__(name=name)
        if kind not in ("mlp", "gru"):
            raise ValueError(f"torso kind {kind!r}: choose 'mlp' or 'gru'")
        if layout not in ("shared", "agentwise"):
            raise ValueError(f"parameter layout {layout!r}: choose 'shared' or 'agentwise'")
        self.kind, self.layout, self.num_agents = kind, layout, num_agents
        self.add_agent_id = add_agent_id and layout == "shared"
        self.hidden = hidden_sizes[0]
        linear = (lambda size, name: snt.Linear(size, name=name)) if layout == "shared" else (
            lambda size, name: AgentwiseLinear(num_agents, size, name=name))
        if kind == "mlp":
            self._layers = [linear(h, f"hidden_{i}") for i, h in enumerate(hidden_sizes)]
        else:
            self._layers = [linear(self.hidden, "embed")]
            self._gru = (snt.GRU(self.hidden, name="gru") if layout == "shared"
                         else AgentwiseGRU(num_agents, self.hidden, name="gru"))
        self._head = linear(output_size, "head")

    def _inputs(self, x: tf.Tensor) -> tf.Tensor:
        if self.add_agent_id:
            x = tf.concat([x, agent_ids(self.num_agents, tf.shape(x)[:-2])], axis=-1)
        return x

    def _gru_cell(self, x: tf.Tensor, h: tf.Tensor):
        if self.layout == "agentwise":
            return self._gru(x, h)
        lead = tf.shape(x)[:-1]
        out, h_new = self._gru(tf.reshape(x, [-1, x.shape[-1]]), tf.reshape(h, [-1, self.hidden]))
        return (tf.reshape(out, tf.concat([lead, [self.hidden]], 0)),
                tf.reshape(h_new, tf.concat([lead, [self.hidden]], 0)))

    def initial_state(self, batch_size: int) -> tf.Tensor:
        return tf.zeros([batch_size, self.num_agents, self.hidden])

    def step(self, x: tf.Tensor, state: tf.Tensor):
        """One time step for E episodes: x (E,N,O) -> (E,N,out), new state."""
        h = self._inputs(x)
        for layer in self._layers:
            h = tf.nn.relu(layer(h))
        if self.kind == "gru":
            h, state = self._gru_cell(h, state)
            h = tf.nn.relu(h)
        return self._head(h), state

    def unroll(self, x: tf.Tensor, resets: Optional[tf.Tensor] = None) -> tf.Tensor:
        """x (B,T,N,O) -> (B,T,N,out). GRU: zero state at t=0 and after rows with resets=1."""
        if self.kind == "mlp":
            return self.step(x, None)[0]
        batch, steps = x.shape[0], x.shape[1]
        state = self.initial_state(batch)
        outputs = []
        for t in range(steps):  # T is static (the replay window); unrolled at trace time
            out, state = self.step(x[:, t], state)
            outputs.append(out)
            if resets is not None:
                state = state * (1.0 - resets[:, t, None, None])
        return tf.stack(outputs, axis=1)


def sample_actions(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sample from masked logits (..., A) with a numpy generator (evaluation randomness)."""
    logits = logits - logits.max(axis=-1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=-1, keepdims=True)
    cumulative = probs.cumsum(axis=-1)
    # u < total, and action j is chosen iff cum[j-1] <= u < cum[j]: never a zero-probability one.
    u = rng.random(probs.shape[:-1] + (1,)) * cumulative[..., -1:]
    return (u >= cumulative).sum(axis=-1)
