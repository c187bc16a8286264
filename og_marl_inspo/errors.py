"""The errors a user can cause, each reported by the CLI as one line (no traceback)."""


class DataError(ValueError):
    """A vault or dataset problem; the message names the path and the field."""


class ConfigError(ValueError):
    """A bad config value; the message names the field."""


class TrainingError(RuntimeError):
    """Training cannot go on (a loss became NaN, a checkpoint does not fit the run)."""


# ValueError also covers unknown system, environment and recipe names.
USER_ERRORS = (ValueError, TrainingError)
