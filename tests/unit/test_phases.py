"""Phase timings: a JSON line per phase in $FORECASTING_PHASES_FILE with its counts, a log line, nothing without the variable."""

from __future__ import annotations

import json
import logging

import pytest

from forecasting.runtime import phases


def test_a_phase_appends_one_json_line_with_its_counts(tmp_path, monkeypatch, caplog) -> None:
    path = tmp_path / "phases.jsonl"
    monkeypatch.setenv(phases.PHASES_ENV, str(path))
    with caplog.at_level(logging.INFO, logger="forecasting.phases"):
        with phases.phase("pull") as counts:
            counts.update(rows=12, series=3)

        @phases.timed("sql write")
        def write() -> int:
            return 7

        assert write() == 7
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["phase"] for line in lines] == ["pull", "sql write"]
    assert lines[0]["rows"] == 12 and lines[0]["series"] == 3
    assert all(line["seconds"] >= 0 and line["peak_rss_mib"] > 0 and line["started"] > 0 for line in lines)
    assert any(record.getMessage().startswith("phase pull: ") and "rows 12, series 3" in record.getMessage() for record in caplog.records)


def test_a_phase_records_the_cpu_seconds_it_used(tmp_path, monkeypatch) -> None:
    path = tmp_path / "phases.jsonl"
    monkeypatch.setenv(phases.PHASES_ENV, str(path))
    with phases.phase("prepare"):
        total = sum(i * i for i in range(2_000_000))  # CPU-bound work of the phase's own thread
    line = json.loads(path.read_text())
    assert total > 0 and line["cpu_seconds"] > 0


def test_a_failing_phase_is_still_recorded_and_the_error_goes_on(tmp_path, monkeypatch) -> None:
    path = tmp_path / "phases.jsonl"
    monkeypatch.setenv(phases.PHASES_ENV, str(path))
    with pytest.raises(ValueError):
        with phases.phase("forecast"):
            raise ValueError("boom")
    assert json.loads(path.read_text())["phase"] == "forecast"


def test_without_the_variable_nothing_is_written(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(phases.PHASES_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with phases.phase("pull"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_the_command_freezes_objects_at_exit_after_other_exit_handlers() -> None:
    """`forecasting` (main() without argv) registers gc.freeze at exit, which runs after the other
    exit handlers, so the interpreter's final collection skips TensorFlow's objects."""
    import subprocess
    import sys

    code = (
        "import atexit, gc\n"
        "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0, flush=True))\n"  # registered before: runs after
        "from forecasting import console\n"
        "console.freeze_at_exit()\n"
        "atexit.register(lambda: print('before', gc.get_freeze_count(), flush=True))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["before", "0", "frozen", "True"], result.stderr


def test_a_timed_step_gives_what_it_freed_back_when_it_ends(monkeypatch):
    """Issue 15 (100,000 series under 2 GB): the allocators keep a finished step's freed pages, so the
    next step's peak would sit on top of them; each step releases them when it ends, failed or not."""
    from forecasting.runtime import memory
    from forecasting.runtime import phases

    released = []
    monkeypatch.setattr(memory, "release_memory", lambda: released.append("heap"))

    @phases.timed("step")
    def step(fail: bool) -> int:
        if fail:
            raise ValueError("failed")
        return 1

    assert step(False) == 1 and released == ["heap"]
    with pytest.raises(ValueError):
        step(True)
    assert released == ["heap", "heap"]


def test_a_data_phase_runs_without_cyclic_collection_and_restores_it() -> None:
    """Issue 15 (cost per series at 100,000 no more than 1.2x that at 10,000): with collection on, every
    surviving per-series object pushes the collector towards a full pass over the whole process, so the
    data phases' cost per series grew with the series count. A data phase pauses it; others do not."""
    import gc

    assert gc.isenabled()
    with phases.phase("prepare", data=True):
        assert not gc.isenabled()
    assert gc.isenabled()
    with phases.phase("train epochs"):
        assert gc.isenabled()

    @phases.timed("sql write", data=True)
    def step() -> bool:
        return gc.isenabled()

    assert step() is False and gc.isenabled()


def test_paused_collection_resumes_only_after_the_last_overlapping_pause() -> None:
    """Steps run in threads of one process: a pause that ends while another is still on must not turn
    collection back on, and one begun while collection was off (a caller's choice) leaves it off."""
    import gc
    import threading

    from forecasting.runtime.memory import paused_gc

    first, second = paused_gc(), paused_gc()
    first.__enter__()
    entered, release, done = threading.Event(), threading.Event(), threading.Event()

    def other_thread() -> None:
        with second:
            entered.set()
            release.wait(10)
        done.set()

    worker = threading.Thread(target=other_thread)
    worker.start()
    assert entered.wait(10)
    first.__exit__(None, None, None)  # the first pause ends while the other thread's is on
    assert not gc.isenabled()
    release.set()
    worker.join(10)
    assert done.is_set() and gc.isenabled()

    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
