"""Cost per series of `benchmarks/scale.py` runs at two sizes: the ratio of each phase's CPU and wall
microseconds per series, larger size over smaller, as a Markdown table.

    .venv/bin/python -m benchmarks.scale_table SMALL.jsonl [SMALL2.jsonl …] --large LARGE.jsonl [--command "run --mode forecast"]

Each file holds the JSON lines one `benchmarks/scale.py` call printed. Several files of the smaller
size (say one run before and one after the larger, to bracket it in time) are averaged. The issue's
target is a ratio of at most 1.2 for every phase; CPU seconds (user + system of the job's process)
are what a busy machine disturbs least, so the table gives both.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

COMMANDS = ("run --mode retrain", "run --mode forecast")


def lines(path: Path) -> dict[str, dict]:
    """The command lines of one scale.py output file, by command."""
    return {line["command"]: line for line in map(json.loads, path.read_text().splitlines()) if line.get("benchmark") == "scale"}


def per_series(runs: list[dict], key: str) -> dict[str, float]:
    """Mean microseconds per series of every phase present in all `runs` (`key`: us_per_series or cpu_us_per_series)."""
    names = set.intersection(*(set(run.get(key, {})) for run in runs))
    return {name: statistics.fmean(run[key][name] for run in runs) for name in names}


def table(small: list[dict], large: dict) -> list[str]:
    """Markdown rows: phase, µs per series (CPU) small and large, CPU ratio, wall ratio."""
    cpu_small, cpu_large = per_series(small, "cpu_us_per_series"), per_series([large], "cpu_us_per_series")
    wall_small, wall_large = per_series(small, "us_per_series"), per_series([large], "us_per_series")
    rows = [
        f"| phase | CPU µs/series at {small[0]['series']:,} | at {large['series']:,} | CPU ratio | wall ratio |",
        "|---|---|---|---|---|",
    ]
    for name in [name for name in large.get("cpu_us_per_series", {}) if name in cpu_small]:
        wall = f"{wall_large[name] / wall_small[name]:.2f}" if wall_small.get(name) and name in wall_large else ""
        ratio = cpu_large[name] / cpu_small[name] if cpu_small[name] else float("nan")
        rows.append(f"| {name} | {cpu_small[name]:,.0f} | {cpu_large[name]:,.0f} | {ratio:.2f} | {wall} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("small", nargs="+", type=Path)
    parser.add_argument("--large", type=Path, required=True)
    parser.add_argument("--command", action="append", help="which command's phases (default: retrain and forecast-only)")
    args = parser.parse_args()
    large = lines(args.large)
    small = [lines(path) for path in args.small]
    for command in args.command or COMMANDS:
        if command not in large or not all(command in runs for runs in small):
            continue
        print(f"`{command}`\n")
        print("\n".join(table([runs[command] for runs in small], large[command])) + "\n")


if __name__ == "__main__":
    main()
