"""Progress within a long phase (pull, training, forecasting, writing, scoring): plain log lines on the
logger `forecasting.runtime.progress` at the start, at most every `$FORECASTING_PROGRESS_SECONDS` (default 10)
and at the end, each with done/total, the rate and an estimate of the time left; and, when stderr is
an interactive terminal and `$FORECASTING_PROGRESS` is not `off` (`forecasting --no-progress`) or
`none`, a live rich bar on it. `none` also keeps the plain lines off stderr in quiet mode (cron mails
any output); they still reach Prefect's logs. While a bar is live the plain lines skip the handlers that write to a terminal
(they would break the bar) and still reach every other handler, such as Prefect's API log handler.

Updates are per batch or chunk, never per row. Never imports prefect; rich only when a bar is drawn.
"""

from __future__ import annotations

import contextvars
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PROGRESS_ENV = "FORECASTING_PROGRESS"
SECONDS_ENV = "FORECASTING_PROGRESS_SECONDS"
DEFAULT_SECONDS = 10.0
_OFF = ("off", "0", "no", "false")
_NONE = ("none",)
logger = logging.getLogger("forecasting.progress")
SILENCE_SECONDS = 25.0  # a phase without a progress line for this long logs that it is still working
_bar_lock = threading.Lock()  # one live bar at a time: a second tracker while one is live logs only
_bar_owner: list[object] = []
_last_line = [time.monotonic()]  # when the last progress line was logged (any tracker or heartbeat)
_phases = threading.local()  # each thread's stack of running heartbeats: the innermost speaks


def interval_seconds() -> float:
    """Seconds between two plain progress lines: `$FORECASTING_PROGRESS_SECONDS`, default 10 (0: every update)."""
    text = os.environ.get(SECONDS_ENV, "").strip()
    try:
        value = float(text) if text else DEFAULT_SECONDS
    except ValueError:
        value = DEFAULT_SECONDS
    return value if value >= 0 else DEFAULT_SECONDS


def lines_wanted() -> bool:
    """Plain progress lines on stderr in quiet mode: `$FORECASTING_PROGRESS` is not `none`."""
    return os.environ.get(PROGRESS_ENV, "").strip().lower() not in _NONE


def keras_verbose(verbose: int) -> int:
    """Keras's (and keras-tuner's) own epoch lines as asked, none with `$FORECASTING_PROGRESS` = `none`:
    they are progress too, and cron mails any output."""
    return verbose if lines_wanted() else 0


def bar_wanted() -> bool:
    """A live bar: stderr is an interactive terminal and `$FORECASTING_PROGRESS` is not off (or none)."""
    if os.environ.get(PROGRESS_ENV, "").strip().lower() in _OFF + _NONE:
        return False
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def duration(seconds: float) -> str:
    """A short human duration: `8 s`, `3 min 05 s`, `2 h 07 min`."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _count(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 or float(value).is_integer() else f"{value:,.1f}"


def _rate(done: float, seconds: float, unit: str) -> str:
    """`250 rows/s`, or for slow work the time each takes: `30 s each`."""
    rate = done / seconds
    return f"{_count(rate)} {unit}/s" if rate >= 1 else f"{duration(1 / rate)} each"


class NotOnTerminal(logging.Filter):
    """Drops the progress lines logged while a bar is live from a handler that writes to a terminal."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "progress_bar_live", False)


_TERMINAL_FILTER = NotOnTerminal()


def _writes_to_terminal(handler: logging.Handler) -> bool:
    stream = getattr(handler, "stream", None)
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False


def _keep_terminal_handlers_quiet() -> None:
    """Put `NotOnTerminal` on every terminal handler that progress lines reach (the logger and its parents)."""
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if _writes_to_terminal(handler) and _TERMINAL_FILTER not in handler.filters:
                handler.addFilter(_TERMINAL_FILTER)
        current = current.parent if current.propagate else None


@dataclass(frozen=True)
class Likely:
    """Where a phase whose total is an upper bound likely ends: after `total` units, `why` saying so
    (training: "early stopping likely near epoch 28 of 100", see `model.defaults.likely_epochs`)."""

    total: int
    why: str


class Progress:
    """Progress of one phase towards a known `total` of `unit` (rows, series, batches, epochs).

    `update(done)` or `advance(count)` per batch or chunk; a log line at the start, at most every
    `interval` seconds (default `interval_seconds()`) and at `finish()`. With `bound`, the total is an
    upper bound (training that early stopping may end sooner) and the time left is said to be at most;
    with `likely` too, the time left to its likely end comes first, the bound after it, until that end
    is passed. `clock` is a seam for tests; `bar` forces the live bar on or off (default: `bar_wanted()`).
    """

    def __init__(
        self,
        what: str,
        total: int,
        unit: str = "rows",
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        bar: bool | None = None,
        bound: bool = False,
        likely: Likely | None = None,
    ) -> None:
        self.what, self.total, self.unit, self.bound = what, max(0, int(total)), unit, bound
        self.likely = likely if bound else None
        self.interval = interval_seconds() if interval is None else interval
        self.clock, self.want_bar = clock, bar
        self.done, self.note = 0, ""
        self.started = self.logged = 0.0
        self.finished = False
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> "Progress":
        return self.start()

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        self.finish(failed=error is not None)

    def start(self) -> "Progress":
        """Log the start line (and show the bar when wanted)."""
        self.started = self.logged = self.clock()
        if self.want_bar if self.want_bar is not None else bar_wanted():
            self._start_bar()
        self._log(f"{self.what}: started" + (f", {_count(self.total)} {self.unit} to go" if self.total > 1 else ""))
        return self

    def advance(self, count: int = 1, note: str | None = None) -> None:
        """`count` more done."""
        self.update(self.done + count, note)

    def update(self, done: int, note: str | None = None, total: int | None = None) -> None:
        """`done` of the total done so far (`note`: what else to say, e.g. the epoch and its loss; `total`: a corrected total)."""
        if total is not None:
            self.total = max(0, int(total))
        self.done = min(int(done), self.total) if self.total else int(done)
        if note is not None:
            self.note = note
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, total=self.total or None, note=self._bar_note())
        now = self.clock()
        if now - self.logged >= self.interval:
            self.logged = now
            self._log(self.line(now))

    def line(self, now: float) -> str:
        """The periodic line: done/total, share, rate and the estimated time left."""
        elapsed = now - self.started
        text = f"{self.what}: {_count(self.done)}/{_count(self.total)} {self.unit}"
        if self.total:
            text += f" ({100 * self.done / self.total:.0f}%)"
        if self.done > 0 and elapsed > 0:
            text += f", {_rate(self.done, elapsed, self.unit)}, {self._left(elapsed / self.done)}"
        else:
            text += ", time left not known yet"
        return text + (f"; {self.note}" if self.note else "")

    def _left(self, each: float) -> str:
        """The time left at `each` seconds per unit: about, at most, or likely and at most."""
        left = (self.total - self.done) * each
        if not self.bound:
            return f"about {duration(left)} left"
        if self.likely is not None and self.done < self.likely.total:
            return f"about {duration((self.likely.total - self.done) * each)} left ({self.likely.why}; at most {duration(left)})"
        return f"at most {duration(left)} left (early stopping may end it sooner)"

    def finish(self, note: str | None = None, failed: bool = False) -> None:
        """Log the end line (done, time taken, rate) and take the bar down; once."""
        if self.finished:
            return
        self.finished = True
        if note is not None:
            self.note = note
        elapsed = self.clock() - self.started
        rate = f" ({_rate(self.done, elapsed, self.unit)})" if elapsed > 0 and self.done else ""
        state = "stopped" if failed else "done"
        text = f"{self.what}: {state}, {_count(self.done)}/{_count(self.total)} {self.unit} in {duration(elapsed)}{rate}"
        self._log(text + (f"; {self.note}" if self.note else ""))
        self._stop_bar()

    def _bar_note(self) -> str:
        """The note cut to what the terminal's width leaves beside the bar (rich would squeeze the bar instead)."""
        room = self._bar.console.width - len(self.what) - len(self.unit) - 2 * len(str(self.total)) - 48
        return self.note if len(self.note) <= room else self.note[: max(room - 1, 0)] + ("…" if room > 0 else "")

    def _log(self, message: str) -> None:
        _last_line[0] = time.monotonic()
        logger.info(message, extra={"progress_bar_live": self._bar is not None})

    def _start_bar(self) -> None:
        with _bar_lock:
            if _bar_owner:
                return
            _bar_owner.append(self)
        try:
            from rich.console import Console  # lazy: rich
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn  # lazy: rich
            from rich.progress import Progress as Bar  # lazy: rich
            from rich.table import Column  # lazy: rich

            _keep_terminal_handlers_quiet()
            columns = (
                TextColumn("{task.description}"), BarColumn(bar_width=16), MofNCompleteColumn(), TextColumn(self.unit), TimeRemainingColumn(), TextColumn("left at most" if self.bound else "left"), TextColumn("{task.fields[note]}", table_column=Column(no_wrap=True)),
            )
            self._bar = Bar(*columns, console=Console(stderr=True), transient=False)
            self._task = self._bar.add_task(self.what, total=self.total or None, note=self._bar_note())
            self._bar.start()
        except Exception:  # noqa: BLE001 - a bar that cannot be drawn must not fail a run; the log lines remain
            self._bar = None
            with _bar_lock:
                _bar_owner.clear()

    def _stop_bar(self) -> None:
        """Take this tracker's bar down (the bar lock is free again)."""
        if self._bar is None:
            return
        try:
            self._bar.stop()
        finally:
            self._bar = None
            with _bar_lock:
                _bar_owner.clear()


def live_tracker() -> Progress | None:
    """The tracker whose bar is live, if any."""
    with _bar_lock:
        return _bar_owner[0] if _bar_owner else None  # type: ignore[return-value]


def stop_bar_since(before: Progress | None) -> None:
    """Finish, as stopped, a tracker whose bar went live after `before` was the live one (a phase that
    failed between a tracker's start and its finish must not leave a bar on the terminal)."""
    current = live_tracker()
    if current is not None and current is not before:
        current.finish(failed=True)


class Heartbeat:
    """While a phase runs, a line `<phase>: still working, <time> so far` whenever no progress line was
    logged for `silence` seconds (a phase without a tracker, or one slow step), so a run's logs are never
    silent for much longer. A daemon thread checks every `check` seconds; in the caller's context
    (Prefect's run context included), so its lines reach the same handlers."""

    def __init__(self, name: str, silence: float = SILENCE_SECONDS, check: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.name, self.silence, self.check, self.clock = name, silence, check, clock
        self.started = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stack: list[Heartbeat] = []

    def __enter__(self) -> "Heartbeat":
        self.started = self.clock()
        self._stack = _phases.__dict__.setdefault("stack", [])
        self._stack.append(self)
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self._run,), name=f"heartbeat {self.name}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self in self._stack:
            self._stack.remove(self)
        if self._thread is not None:
            self._thread.join(timeout=1)

    def _run(self) -> None:
        while not self._stop.wait(self.check):
            self.beat()

    def beat(self) -> bool:
        """Log the still-working line if this is the innermost running phase and the logs were silent for long enough."""
        now = self.clock()
        if not self._stack or self._stack[-1] is not self or now - max(_last_line[0], self.started) < self.silence:
            return False
        _last_line[0] = now
        live = live_tracker() is not None
        logger.info(f"{self.name}: still working, {duration(now - self.started)} so far", extra={"progress_bar_live": live})
        return True
