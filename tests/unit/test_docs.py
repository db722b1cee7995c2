"""The documentation site builds with `mkdocs build --strict`, and the strict build fails on what it must refuse:
a broken link, a config key without an explanation, an explanation for a key the config models do not have."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def build(root: Path, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(root / "mkdocs.yml"), "--site-dir", str(site)]
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=300)


def docs_copy(tmp_path: Path) -> Path:
    """mkdocs.yml and docs/ beside the checkout's code (the hook reads the models from the config file's folder)."""
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copy(ROOT / "mkdocs.yml", root / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", root / "docs", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "forecasting").symlink_to(ROOT / "forecasting", target_is_directory=True)
    return root


def test_the_site_builds_strict_with_the_generated_config_reference(tmp_path):
    result = build(ROOT, tmp_path / "site")
    assert result.returncode == 0, result.stdout + result.stderr
    page = (tmp_path / "site" / "configuration" / "index.html").read_text()
    # Keys of every config table, with a type, bound and default read from the pydantic models.
    for text in ("max_series_drop", "future_fill", "training_timeout_minutes", "hyperband_iterations", "live_window", "timezone"):
        assert text in page, text
    assert "≤ 1.0" in page and "required" in page


def test_a_broken_link_fails_the_build(tmp_path):
    root = docs_copy(tmp_path)
    page = root / "docs" / "getting-started.md"
    page.write_text(page.read_text() + "\nSee [a page that is not there](no-such-page.md).\n")
    result = build(root, tmp_path / "site")
    assert result.returncode != 0
    assert "no-such-page.md" in result.stdout + result.stderr


def test_a_config_key_without_an_explanation_fails_the_build(tmp_path):
    root = docs_copy(tmp_path)
    keys = root / "docs" / "hooks" / "config_keys.yml"
    explanations = yaml.safe_load(keys.read_text())
    del explanations["source.max_series_drop"]
    keys.write_text(yaml.safe_dump(explanations, allow_unicode=True))
    result = build(root, tmp_path / "site")
    assert result.returncode != 0
    assert "source.max_series_drop has no explanation" in result.stdout + result.stderr


def test_an_explanation_of_a_key_the_models_lack_fails_the_build(tmp_path):
    root = docs_copy(tmp_path)
    keys = root / "docs" / "hooks" / "config_keys.yml"
    keys.write_text(keys.read_text() + "source.no_such_key: >-\n  Gone from the models.\n")
    result = build(root, tmp_path / "site")
    assert result.returncode != 0
    assert "source.no_such_key" in result.stdout + result.stderr


def test_nothing_in_the_repository_points_outside_it():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False).stdout.split()
    if not tracked:  # not a git checkout: the files on disk
        tracked = [str(path.relative_to(ROOT)) for path in ROOT.rglob("*") if path.is_file() and ".git" not in path.parts]
    offenders = []
    for name in tracked:
        path = ROOT / name
        if path.suffix not in {".md", ".py", ".toml", ".yml", ".yaml", ".txt", ".cfg", ".ini", ""} or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        for needle in ("../" + "shared", "DESIGN" + ".md"):
            if needle in text:
                offenders.append(f"{name}: {needle}")
    assert not offenders, offenders


def test_the_architecture_layout_names_every_package_and_module():
    """docs/architecture.md's Layout has one line per package and per module (module names are unique, test_layout)."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    layout = text[text.index("## Layout") : text.index("## Data flow")]
    named = {line.split()[0] for line in layout.splitlines() if line.startswith("  ") and line.strip()}
    missing = []
    for package in ("forecasting", "flows"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name in ("__init__.py", "__main__.py"):
                continue
            if path.name not in named:
                missing.append(str(path.relative_to(ROOT)))
        for folder in sorted(p for p in (ROOT / package).iterdir() if (p / "__init__.py").is_file()):
            if f"{folder.name}/" not in named:
                missing.append(f"{folder.relative_to(ROOT)}/")
    assert not missing, f"add a line to docs/architecture.md's Layout for: {missing}"
