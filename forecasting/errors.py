"""Errors the CLI turns into one clear line and an exit code."""


class ForecastingError(Exception):
    """Base class: a failure with a message meant for the person running the job."""

    exit_code = 1


class ConfigError(ForecastingError):
    """The configuration (file, environment, or what it points at) is wrong: exit 2."""

    exit_code = 2


class InputError(ForecastingError):
    """Input data given by the user is unusable (a file to load, a column): exit 2."""

    exit_code = 2


class RunError(ForecastingError):
    """The pipeline could not do what was asked with the data and models it has: exit 1."""

    exit_code = 1
