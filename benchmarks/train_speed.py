"""Train steps per second of every registered system on synthetic batches (algorithms.md 2.10).

    python benchmarks/train_speed.py [--steps 50] [--warmup 3] [--only smac|xor]
                                     [--systems inspo,bc,...]

Two workloads, no vault needed, each system with its own `systems/<name>.py` settings
for the task:

- `smac`: SMAC 5m_vs_6m shapes (N=5, O=55, S=98, A=12), windows of T=20, B=32, the
  `smac_v1` overrides (GRU policies, XLA on).
- `xor`: the XOR game (N=2, O=S=1, A=2), B=256 transitions of T=2, the matrix overrides.

InSPO is timed in its InSPO phase (`bc_steps=0`), sequential and simultaneous ("w/o
SPO"). The first `--warmup` steps (tracing, XLA compilation) are timed apart and not
counted. The last column is each system's time per step relative to BC's.
"""

from __future__ import annotations

import argparse
import os
import time
import types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from og_marl_inspo.config import default_config  # noqa: E402
from og_marl_inspo.registry import get_system, list_systems  # noqa: E402

WORKLOADS = {  # n agents, obs, state, actions, T, B
    "smac": dict(n=5, obs=55, state=98, actions=12, t=20, b=32),
    "xor": dict(n=2, obs=1, state=1, actions=2, t=2, b=256),
}


def fake_environment(n, obs, state, actions, **_):
    return types.SimpleNamespace(agents=[f"agent_{i}" for i in range(n)], num_actions=actions,
                                 observation_shape=(obs,), state_shape=(state,))


def synthetic_batch(n, obs, state, actions, t, b, seed=0):
    """A window batch with some illegal actions and episode ends, every taken action legal."""
    rng = np.random.default_rng(seed)
    legals = (rng.random((b, t, n, actions)) < 0.7).astype(np.float32)
    legals[..., 0] = 1.0
    acts = np.where(legals > 0, rng.random((b, t, n, actions)), -1.0).argmax(-1).astype(np.int32)
    terminals = (rng.random((b, t, 1)) < 0.05).astype(np.float32).repeat(n, -1)
    return {"observations": rng.normal(size=(b, t, n, obs)).astype(np.float32), "actions": acts,
            "rewards": rng.normal(size=(b, t, 1)).astype(np.float32).repeat(n, -1),
            "terminals": terminals, "truncations": np.zeros((b, t, n), np.float32),
            "infos": {"legals": legals, "state": rng.normal(size=(b, t, state)).astype(np.float32)}}


def steps_per_second(system, batches, warmup: int, steps: int):
    """(steps/s after warm-up, seconds of warm-up)."""
    t0 = time.perf_counter()
    for k in range(warmup):
        system.train_step(batches[k % len(batches)])
    t1 = time.perf_counter()
    for k in range(steps):
        logs = system.train_step(batches[k % len(batches)])
    float(next(iter(logs.values())))  # wait for the last step
    return steps / (time.perf_counter() - t1), t1 - t0


def timed_configs(workload: str, names):
    """(label, system name, config kwargs) for each system timed on `workload`."""
    env, scenario = ("smac_v1", "5m_vs_6m") if workload == "smac" else ("matrix", "xor")
    out = []
    for name in names:
        kwargs = default_config(name, env, scenario).system.to_dict()
        if name == "inspo":
            kwargs["bc_steps"] = 0  # time the InSPO phase, not its behaviour cloning
            out.append(("inspo (sequential)", name, kwargs))
            out.append(("inspo (simultaneous)", name, {**kwargs, "sequential": False}))
        else:
            out.append((name, name, kwargs))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--only", choices=sorted(WORKLOADS), default=None)
    parser.add_argument("--systems", default=None, help="comma-separated; default: every registered")
    args = parser.parse_args()
    names = args.systems.split(",") if args.systems else list_systems()
    if "bc" not in names:
        names.append("bc")  # the reference column
    devices = ", ".join(d.device_type for d in tf.config.list_physical_devices())
    print(f"tensorflow {tf.__version__} on {devices}; {os.cpu_count()} CPU cores")
    for workload in [args.only] if args.only else list(WORKLOADS):
        shapes = WORKLOADS[workload]
        env = fake_environment(**shapes)
        batches = [synthetic_batch(**shapes, seed=k) for k in range(4)]
        print(f"\n{workload}: " + ", ".join(f"{k}={v}" for k, v in shapes.items()))
        rates = {}
        for label, name, kwargs in timed_configs(workload, names):
            system = get_system(name, env, None, seed=0, **kwargs)
            rates[label], warm = steps_per_second(system, batches, args.warmup, args.steps)
            print(f"  {label:22s} {rates[label]:8.1f} steps/s   "
                  f"(warm-up {args.warmup} steps: {warm:.1f} s)", flush=True)
        print("  time per step relative to bc: " + ", ".join(
            f"{label} {rates['bc'] / rate:.1f}x" for label, rate in rates.items() if label != "bc"))


if __name__ == "__main__":
    main()
