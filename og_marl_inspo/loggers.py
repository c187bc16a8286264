"""Loggers with OG-MARL's interface: `write(logs, force=False)` and `close()`.

- `TerminalLogger`: sorted `key: value` lines through absl logging, rate-limited.
- `TensorBoardLogger`: one scalar per key at the log's `training_steps`.
- `JsonLinesLogger`: every write appended as one JSON line (flushed), so a killed run
  keeps what it logged.
- `MultiLogger`: fans one write out to several loggers.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Dict, Iterable

from absl import logging


class TerminalLogger:
    def __init__(self, log_every: float = 2.0) -> None:
        self.log_every = log_every
        self._last = -float("inf")

    def write(self, logs: Dict, force: bool = False) -> None:
        now = time.time()
        if force or now - self._last >= self.log_every:
            self._last = now
            logging.info(" | ".join(f"{k}: {float(v):.4g}" for k, v in sorted(logs.items())))

    def close(self) -> None:
        pass


class TensorBoardLogger:
    def __init__(self, logdir: str) -> None:
        import tensorflow as tf

        self._tf = tf
        self._writer = tf.summary.create_file_writer(str(logdir))

    def write(self, logs: Dict, force: bool = False) -> None:
        step = int(logs.get("training_steps", logs.get("evaluation/training_steps", 0)))
        with self._writer.as_default():
            for key, value in logs.items():
                self._tf.summary.scalar(key, float(value), step=step)
        if force:
            self._writer.flush()

    def close(self) -> None:
        self._writer.flush()


class JsonLinesLogger:
    def __init__(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "a", encoding="utf-8")

    def write(self, logs: Dict, force: bool = False) -> None:
        self._file.write(json.dumps({k: float(v) for k, v in logs.items()}) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class MultiLogger:
    def __init__(self, loggers: Iterable) -> None:
        self.loggers = list(loggers)

    def write(self, logs: Dict, force: bool = False) -> None:
        for logger in self.loggers:
            logger.write(logs, force=force)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()
