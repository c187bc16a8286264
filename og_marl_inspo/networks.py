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
        lead = tf.shape(h)[:-1]
        if self.kind == "mlp" and self.layout == "shared":  # 2-D matmuls: fast gradients on CPU
            h = tf.reshape(h, [-1, h.shape[-1]])
        for layer in self._layers:
            h = tf.nn.relu(layer(h))
        if self.kind == "mlp" and self.layout == "shared":
            out = self._head(h)
            return tf.reshape(out, tf.concat([lead, [out.shape[-1]]], 0)), state
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


# ------------------------------------------------------- one agent's slice of an agentwise torso
# Sequential per-agent updates (InSPO, AlberDICE) train one agent per turn: gather that
# agent's weight slices, run a plain dense forward, and let `AgentSlicedAdam` move only
# that slice (algorithms.md 1.3). The functions below read an agentwise `Torso`.


def agentwise_variables(torso: Torso) -> list:
    """The stacked weights of an agentwise torso in forward order: [w, b] per layer.

    MLP: hidden layers, head. GRU: embed, GRU input gates, GRU hidden gates, head.
    Every tensor has the agent axis first: w (N, in, out), b (N, out).
    """
    if torso.layout != "agentwise":
        raise ValueError("agentwise_variables needs a torso with layout='agentwise'")
    layers = list(torso._layers)
    if torso.kind == "gru":
        layers += [torso._gru._inputs, torso._gru._hidden]
    layers.append(torso._head)
    if not all(hasattr(layer, "w") for layer in layers):
        raise ValueError("agentwise torso is not built yet: call it once on an input first")
    return [v for layer in layers for v in (layer.w, layer.b)]


def agent_slice(variables, agent) -> list:
    """Agent `agent`'s slice of each stacked variable, keeping a leading axis of 1.

    `agent` may be a scalar int tensor (a traced permutation entry).
    """
    return [tf.gather(v, agent[None] if isinstance(agent, tf.Tensor) else [agent]) for v in variables]


def agentwise_unroll(kind: str, params, x: tf.Tensor, resets: Optional[tf.Tensor] = None) -> tf.Tensor:
    """`Torso.unroll` of an agentwise torso, with explicit params, agent-major.

    x (K,B,T,in) -> (K,B,T,out), params from `agentwise_variables` (K = N) or one agent's
    `agent_slice` (K = 1); `resets` (B,T). Batched matmuls instead of the torso's einsum:
    TensorFlow's einsum gradient with broadcast `...` axes is some 40x slower on CPU.
    Equal to `Torso.unroll` with the agent axis moved to the front (tested).
    """
    def linear(h, w, b):  # h (K,...,in), w (K,in,out), b (K,out)
        shape = h.shape.as_list() if h.shape.is_fully_defined() else tf.unstack(tf.shape(h))
        flat = tf.matmul(tf.reshape(h, [shape[0], -1, shape[-1]]), w) + b[:, None]
        return tf.reshape(flat, shape[:-1] + [w.shape[-1]])

    x = tf.convert_to_tensor(x, tf.float32)
    if kind == "mlp":
        h = x
        *hidden, w_out, b_out = params
        for w, b in zip(hidden[0::2], hidden[1::2]):
            h = tf.nn.relu(linear(h, w, b))
        return linear(h, w_out, b_out)
    w_e, b_e, w_i, b_i, w_h, b_h, w_out, b_out = params
    embedded = tf.nn.relu(linear(x, w_e, b_e))  # (K,B,T,H)
    state = tf.zeros([x.shape[0], x.shape[1], w_h.shape[1]])  # (K,B,H)
    outputs = []
    for t in range(x.shape[2]):  # T is static (the replay window); unrolled as Torso.unroll
        xr, xz, xn = tf.split(tf.matmul(embedded[:, :, t], w_i) + b_i[:, None], 3, axis=-1)
        hr, hz, hn = tf.split(tf.matmul(state, w_h) + b_h[:, None], 3, axis=-1)
        r, z = tf.sigmoid(xr + hr), tf.sigmoid(xz + hz)
        state = (1.0 - z) * tf.tanh(xn + r * hn) + z * state
        outputs.append(tf.matmul(tf.nn.relu(state), w_out) + b_out[:, None])
        if resets is not None:
            state = state * (1.0 - resets[None, :, t, None])
    return tf.stack(outputs, axis=2)


class AgentSlicedAdam(snt.Module):
    """Adam over agentwise variables that moves one agent's slice per `apply`.

    Plain Adam with a zero gradient still moves a parameter through its momentum, so a
    sequential per-agent update needs moments stacked like the weights (agent axis
    first) and a step that touches slice `agent` only: its weights, both moments and
    its own step count (bias correction). Every other slice is left bit-for-bit as it
    was (tested). The update is `snt.optimizers.Adam`'s, applied to one slice; moments
    are kept flat, (N, parameters per agent), so a step is a few dozen ops, not a few
    dozen per variable. `clip_norm` clips the slice's gradient by its global norm.
    """

    def __init__(self, variables, learning_rate: float, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, clip_norm: Optional[float] = None,
                 name: Optional[str] = None) -> None:
        super().__init__(name=name)
        self.learning_rate, self.beta1, self.beta2, self.epsilon = learning_rate, beta1, beta2, epsilon
        self.clip_norm = clip_norm
        self._shapes = [v.shape[1:] for v in variables]
        self._sizes = [int(np.prod(shape)) for shape in self._shapes]
        num_agents = int(variables[0].shape[0])
        self.m = tf.Variable(tf.zeros([num_agents, sum(self._sizes)]), trainable=False, name="m")
        self.v = tf.Variable(tf.zeros([num_agents, sum(self._sizes)]), trainable=False, name="v")
        self.count = tf.Variable(tf.zeros([num_agents]), trainable=False, name="count")

    def apply(self, grads, variables, agent) -> None:
        """`grads[k]`: gradient of `agent_slice(variables, agent)[k]`, shape (1,) + var.shape[1:]."""
        agent = tf.reshape(tf.cast(agent, tf.int32), [1])
        index = agent[:, None]  # (1,1)
        g = tf.concat([tf.reshape(x, [1, -1]) for x in grads], 1)  # (1,P)
        if self.clip_norm is not None:
            g = g * tf.minimum(1.0, self.clip_norm / (tf.norm(g) + 1e-12))
        t = tf.gather(self.count, agent) + 1.0  # (1,)
        m = self.beta1 * tf.gather(self.m, agent) + (1.0 - self.beta1) * g
        v = self.beta2 * tf.gather(self.v, agent) + (1.0 - self.beta2) * tf.square(g)
        self.count.scatter_nd_update(index, t)
        self.m.scatter_nd_update(index, m)
        self.v.scatter_nd_update(index, v)
        m_hat = m / (1.0 - self.beta1 ** t[:, None])
        v_hat = v / (1.0 - self.beta2 ** t[:, None])
        step = self.learning_rate * m_hat / (tf.sqrt(v_hat) + self.epsilon)  # (1,P)
        for var, part, shape in zip(variables, tf.split(step, self._sizes, axis=1), self._shapes):
            var.scatter_nd_sub(index, tf.reshape(part, [1] + shape.as_list()))


# ------------------------------------------------------------------------------- QMIX mixer
class QMixer(snt.Module):
    """OG-MARL's QMIX mixer (algorithms.md 1.4), embed 32, hyper-network embed 64.

    Q_tot = ELU(q W1(s) + b1(s)) W2(s) + V(s), with W1, W2 >= 0 (abs) so that Q_tot is
    monotonic in every agent's q. `k(state)` gives MAICQ's credit coefficients
    k_i(s) = (|W1| |W2|)_i / sum_j (|W1| |W2|)_j.
    """

    def __init__(self, num_agents: int, embed_dim: int = 32, hypernet_embed: int = 64,
                 name: Optional[str] = None) -> None:
        super().__init__(name=name)
        self.num_agents, self.embed_dim = num_agents, embed_dim
        self._w1 = snt.Sequential([snt.Linear(hypernet_embed), tf.nn.relu,
                                   snt.Linear(num_agents * embed_dim)])
        self._w2 = snt.Sequential([snt.Linear(hypernet_embed), tf.nn.relu, snt.Linear(embed_dim)])
        self._b1 = snt.Linear(embed_dim)
        self._v = snt.Sequential([snt.Linear(embed_dim), tf.nn.relu, snt.Linear(1)])

    @staticmethod
    def _hyper(net, state: tf.Tensor) -> tf.Tensor:
        """A hyper-network on 2-D rows (fast gradients on CPU), leading axes restored."""
        out = net(tf.reshape(state, [-1, state.shape[-1]]))
        return tf.reshape(out, tf.concat([tf.shape(state)[:-1], [out.shape[-1]]], 0))

    def _weights(self, state: tf.Tensor):
        lead = tf.shape(state)[:-1]
        w1 = tf.abs(self._hyper(self._w1, state))
        w1 = tf.reshape(w1, tf.concat([lead, [self.num_agents, self.embed_dim]], 0))  # (...,N,E)
        w2 = tf.abs(self._hyper(self._w2, state))[..., None]  # (...,E,1)
        return w1, w2

    def __call__(self, q: tf.Tensor, state: tf.Tensor) -> tf.Tensor:
        """q (...,N), state (...,S) -> Q_tot (...)."""
        w1, w2 = self._weights(state)
        # batched matmuls, not einsum: TensorFlow's einsum gradient with `...` is slow on CPU
        hidden = tf.nn.elu(tf.matmul(q[..., None, :], w1)[..., 0, :] + self._hyper(self._b1, state))
        return tf.matmul(hidden[..., None, :], w2)[..., 0, 0] + self._hyper(self._v, state)[..., 0]

    def k(self, state: tf.Tensor) -> tf.Tensor:
        """MAICQ's normalised credit coefficients, state (...,S) -> (...,N), summing to 1."""
        w1, w2 = self._weights(state)
        k = tf.matmul(w1, w2)[..., 0]  # (...,N)
        return k / tf.reduce_sum(k, axis=-1, keepdims=True)


# ------------------------------------------------------------------------ autoregressive heads
def ar_inputs(state: tf.Tensor, actions: tf.Tensor, num_actions: int) -> tf.Tensor:
    """CPA's autoregressive inputs (algorithms.md 3.1): agent i sees [s, one-hot(i), a_<i].

    state (...,S), actions (...,N) int (entries of agents >= i are never read by agent i)
    -> (...,N, S + N + (N-1)*A): slot j < N-1 holds one-hot(a_j) for agents i > j, zeros
    otherwise, so one call evaluates every agent under teacher forcing.
    """
    n = actions.shape[-1]
    lead = tf.shape(actions)[:-1]
    previous = tf.one_hot(actions[..., :n - 1], num_actions)  # (...,N-1,A)
    seen = tf.constant(np.tril(np.ones((n, n - 1), np.float32), -1))  # (N,N-1): j < i
    slots = seen[..., None] * previous[..., None, :, :]  # (...,N,N-1,A)
    slots = tf.reshape(slots, tf.concat([lead, [n, (n - 1) * num_actions]], 0))
    states = tf.broadcast_to(state[..., None, :], tf.concat([lead, [n, state.shape[-1]]], 0))
    return tf.concat([states, agent_ids(n, lead), slots], axis=-1)


class ARHead(snt.Module):
    """An MLP over `ar_inputs`, shared by all agents: pi_i(.|s, a_<i) logits or Q_i(s, ., a_<i).

    `__call__(state (...,S), actions (...,N))` -> (...,N,out), every agent at once
    (teacher forcing); `agent(state, actions, i)` -> (...,out) for agent i alone, the
    sequential step of autoregressive sampling.
    """

    def __init__(self, num_agents: int, num_actions: int, output_size: int,
                 hidden_sizes: Sequence[int] = (128, 128), name: Optional[str] = None) -> None:
        super().__init__(name=name)
        self.num_agents, self.num_actions = num_agents, num_actions
        self._mlp = snt.nets.MLP(list(hidden_sizes) + [output_size], name="mlp")

    def _apply(self, x: tf.Tensor) -> tf.Tensor:
        flat = self._mlp(tf.reshape(x, [-1, x.shape[-1]]))  # 2-D matmuls: fast gradients on CPU
        return tf.reshape(flat, tf.concat([tf.shape(x)[:-1], [flat.shape[-1]]], 0))

    def __call__(self, state: tf.Tensor, actions: tf.Tensor) -> tf.Tensor:
        return self._apply(ar_inputs(state, actions, self.num_actions))

    def agent(self, state: tf.Tensor, actions: tf.Tensor, i: int) -> tf.Tensor:
        return self._apply(ar_inputs(state, actions, self.num_actions)[..., i, :])
