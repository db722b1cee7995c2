"""Progress within long phases: plain log lines at the start, at most every interval and at the end, with
done/total, the rate and the time left (an upper bound for training), on a clock the test moves."""

from __future__ import annotations

import io
import logging

import pytest

from forecasting.runtime import phases
from forecasting.runtime import progress
from forecasting.runtime.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def lines(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "forecasting.progress"]


def test_lines_at_start_every_interval_and_at_the_end_with_rate_and_time_left(caplog) -> None:
    clock = Clock()
    with caplog.at_level(logging.INFO, logger="forecasting.progress"):
        with Progress("sql write forecasts", 1000, "rows", interval=10, clock=clock, bar=False) as tracker:
            for _ in range(10):  # 100 rows every 4 s: a line at 12 s, 24 s, 36 s only
                clock.now += 4
                tracker.advance(100)
    assert lines(caplog) == [
        "sql write forecasts: started, 1,000 rows to go",
        "sql write forecasts: 300/1,000 rows (30%), 25 rows/s, about 28 s left",
        "sql write forecasts: 600/1,000 rows (60%), 25 rows/s, about 16 s left",
        "sql write forecasts: 900/1,000 rows (90%), 25 rows/s, about 4.0 s left",
        "sql write forecasts: done, 1,000/1,000 rows in 40 s (25 rows/s)",
    ]


def test_an_upper_bound_says_at_most_and_a_note_goes_with_the_line(caplog) -> None:
    clock = Clock()
    with caplog.at_level(logging.INFO, logger="forecasting.progress"):
        tracker = Progress("train epochs", 50, "epochs", interval=0, clock=clock, bar=False, bound=True).start()
        clock.now += 90
        tracker.update(3, "epoch 3/50, val_loss 0.12")
        clock.now += 3630
        tracker.update(50)
        tracker.finish("stopped early after 12/50 epochs")
        tracker.finish()  # once only
    assert lines(caplog) == [
        "train epochs: started, 50 epochs to go",
        "train epochs: 3/50 epochs (6%), 30 s each, at most 23 min 30 s left (early stopping may end it sooner); epoch 3/50, val_loss 0.12",
        "train epochs: 50/50 epochs (100%), 1 min 14 s each, at most 0.0 s left (early stopping may end it sooner); epoch 3/50, val_loss 0.12",
        "train epochs: done, 50/50 epochs in 1 h 02 min (1 min 14 s each); stopped early after 12/50 epochs",
    ]


def test_a_likely_end_comes_first_with_the_bound_after_it_until_it_is_passed(caplog) -> None:
    """Issue 27: the first line said "at most 10 h 47 min left"; it says where early stopping likely ends it first."""
    clock = Clock()
    likely = progress.Likely(28, "early stopping likely ends it near epoch 28 of 100")
    with caplog.at_level(logging.INFO, logger="forecasting.progress"):
        tracker = Progress("train epochs", 100, "epochs", interval=0, clock=clock, bar=False, bound=True, likely=likely).start()
        clock.now += 60
        tracker.update(2)
        clock.now += 840
        tracker.update(30)
    assert lines(caplog)[1:] == [
        "train epochs: 2/100 epochs (2%), 30 s each, about 13 min 00 s left (early stopping likely ends it near epoch 28 of 100; at most 49 min 00 s)",
        "train epochs: 30/100 epochs (30%), 30 s each, at most 35 min 00 s left (early stopping may end it sooner)",
    ]
    assert Progress("forecast", 10, "series", likely=likely).likely is None  # only a bound has a likely end


def test_nothing_done_yet_has_no_estimate_and_a_failure_says_stopped(caplog) -> None:
    clock = Clock()
    with caplog.at_level(logging.INFO, logger="forecasting.progress"):
        with pytest.raises(RuntimeError):
            with Progress("forecast", 10_000, "series", interval=0, clock=clock, bar=False) as tracker:
                clock.now += 12
                tracker.update(0)
                raise RuntimeError("boom")
    assert lines(caplog)[1] == "forecast: 0/10,000 series (0%), time left not known yet"
    assert lines(caplog)[-1] == "forecast: stopped, 0/10,000 series in 12 s"


def test_the_interval_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv(progress.SECONDS_ENV, "2.5")
    assert progress.interval_seconds() == 2.5
    monkeypatch.setenv(progress.SECONDS_ENV, "soon")
    assert progress.interval_seconds() == progress.DEFAULT_SECONDS
    monkeypatch.delenv(progress.SECONDS_ENV)
    assert progress.interval_seconds() == progress.DEFAULT_SECONDS == 10


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bar_only_on_a_terminal_and_not_when_switched_off(monkeypatch) -> None:
    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert not progress.bar_wanted()
    monkeypatch.setattr("sys.stderr", Terminal())
    assert progress.bar_wanted()
    for off in ("off", "0", "no", "false"):
        monkeypatch.setenv(progress.PROGRESS_ENV, off)
        assert not progress.bar_wanted()


def test_while_a_bar_is_live_the_lines_skip_terminal_handlers_and_reach_the_others(monkeypatch) -> None:
    """The bar and the plain lines never share a terminal; other handlers (Prefect's API handler) get every line."""
    terminal, elsewhere = Terminal(), io.StringIO()
    monkeypatch.setattr("sys.stderr", Terminal())  # where the bar draws
    on_terminal, to_file = logging.StreamHandler(terminal), logging.StreamHandler(elsewhere)
    log = logging.getLogger("forecasting.progress")
    for handler in (on_terminal, to_file):
        log.addHandler(handler)
    monkeypatch.setattr(log, "level", logging.INFO)
    clock = Clock()
    try:
        with Progress("forecast", 4, "series", interval=0, clock=clock, bar=True) as tracker:
            assert progress.live_tracker() is tracker
            clock.now += 1
            tracker.advance(2)
        assert progress.live_tracker() is None
        with Progress("forecast", 4, "series", interval=0, clock=clock, bar=False) as tracker:
            tracker.advance(4)
    finally:
        for handler in (on_terminal, to_file):
            log.removeHandler(handler)
    sent = elsewhere.getvalue().splitlines()
    assert sent[:3] == ["forecast: started, 4 series to go", "forecast: 2/4 series (50%), 2 series/s, about 1.0 s left", "forecast: done, 2/4 series in 1.0 s (2 series/s)"]
    assert len(sent) == 6
    assert terminal.getvalue().splitlines() == sent[3:]  # only the lines logged without a bar


def test_a_failing_phase_takes_down_a_bar_started_inside_it(monkeypatch, caplog) -> None:
    monkeypatch.setattr("sys.stderr", Terminal())
    with caplog.at_level(logging.INFO, logger="forecasting.progress"):
        with pytest.raises(ValueError):
            with phases.phase("sql write"):
                Progress("sql write forecasts", 10, "rows", bar=True).start()
                assert progress.live_tracker() is not None
                raise ValueError("boom")
    assert progress.live_tracker() is None
    assert lines(caplog)[-1].startswith("sql write forecasts: stopped, 0/10 rows")


def test_durations_read_as_people_say_them() -> None:
    assert [progress.duration(s) for s in (0.25, 9.94, 42, 185, 7620)] == ["0.2 s", "9.9 s", "42 s", "3 min 05 s", "2 h 07 min"]


def test_the_command_line_switch_turns_the_bar_off(tmp_path, monkeypatch, capsys) -> None:
    from forecasting.cli import main as cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(progress.PROGRESS_ENV, "")  # restored after the test
    monkeypatch.setattr("sys.stderr", Terminal())
    assert progress.bar_wanted()
    cli.main(["--no-progress", "--config", str(tmp_path / "missing.toml"), "init"])  # fails on the config: the switch is read first
    assert not progress.bar_wanted()


def test_the_quiet_command_keeps_progress_lines_off_the_terminal_but_not_warnings(monkeypatch) -> None:
    """Quiet (the default) a terminal shows the bar, not the lines; --verbose shows them."""
    from forecasting.runtime import console

    monkeypatch.delenv(console.VERBOSE_ENV, raising=False)
    monkeypatch.delenv(console.DEBUG_ENV, raising=False)

    def shown(name: str, level: int) -> bool:
        return console._FILTER.filter(logging.LogRecord(name, level, __file__, 1, "forecast: 1/2 series", None, None))

    assert not shown("forecasting.progress", logging.INFO) and not shown("forecasting.phases", logging.INFO)
    assert shown("forecasting.progress", logging.WARNING) and shown("forecasting.model.training", logging.INFO)


def test_a_phase_silent_for_long_says_it_is_still_working_and_only_the_innermost_speaks(monkeypatch, caplog) -> None:
    clock = Clock()
    monkeypatch.setattr(progress, "_last_line", [clock.now])
    with caplog.at_level(logging.INFO, logger="forecasting.progress"):
        with progress.Heartbeat("prepare", silence=25, check=3600, clock=clock) as outer:
            clock.now += 24
            assert not outer.beat()  # 24 s of silence: nothing yet
            clock.now += 1
            assert outer.beat()
            clock.now += 10
            assert not outer.beat()  # its own line counts as one
            with progress.Heartbeat("prepare: grids", silence=25, check=3600, clock=clock) as inner:
                clock.now += 30
                assert not outer.beat() and inner.beat()
                Progress("pull: read source", 10, "series", bar=False).start()  # a progress line resets the silence
                monkeypatch.setattr(progress, "_last_line", [clock.now])
                clock.now += 20
                assert not inner.beat()
            clock.now += 25
            assert outer.beat()
    said = [line for line in lines(caplog) if "still working" in line]
    assert said == ["prepare: still working, 25 s so far", "prepare: grids: still working, 30 s so far", "prepare: still working, 1 min 50 s so far"]
