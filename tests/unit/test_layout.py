"""The library/orchestration split, the package layers and the import rules."""

import ast
import os
import pkgutil
import re
import shutil
import subprocess
import sys
from pathlib import Path

import forecasting
import pytest


@pytest.mark.slow
def test_library_modules_never_import_prefect():
    modules = [m.name for m in pkgutil.walk_packages(forecasting.__path__, "forecasting.") if m.name not in ("forecasting.cli.main", "forecasting.__main__")]
    script = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print('prefect' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False", modules


def test_cli_help_is_fast_and_imports_neither_prefect_nor_tensorflow():
    script = (
        "import sys\nfrom forecasting.cli.main import build_parser\nbuild_parser()\n"
        "print(any(name in sys.modules for name in ('prefect', 'tensorflow')))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# The package map (docs/architecture.md): packages by concern, layered, without import cycles.
ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ("forecasting", "flows")


def _modules() -> list[Path]:
    return [path for top in LIBRARY for path in sorted((ROOT / top).rglob("*.py"))]


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("lint-imports")), "--config", str(cwd / "pyproject.toml"), "--no-cache"]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(cwd)})


def test_the_import_contracts_hold():
    """pyproject's [tool.importlinter]: a package imports only the packages below it, and no two
    modules of a package import each other, directly or through others (imports inside functions count)."""
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_the_import_contracts_catch_a_cycle_added_inside_a_function(tmp_path):
    """The contract is not vacuous: a cycle hidden in a function (grids -> windows -> grids) breaks it."""
    for top in LIBRARY:
        shutil.copytree(ROOT / top, tmp_path / top, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    grids = tmp_path / "forecasting" / "preparation" / "grids.py"
    grids.write_text(grids.read_text() + "\n\ndef _cycle():\n    from forecasting.preparation.windows import SeriesArrays  # lazy: test\n    return SeriesArrays\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and ".grids -> .windows" in result.stdout


def test_every_import_inside_a_function_is_marked_lazy():
    """Imports sit at the module top. The deliberate exceptions keep a heavy or optional package
    (TensorFlow, Keras, keras-tuner, Prefect, matplotlib, an extra) out of the importing module's
    import, so the CLI starts quickly and extras stay optional; each says so in its comment: `lazy: <package>`."""
    unmarked = []
    for path in _modules():
        lines = path.read_text().split("\n")
        for function in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(function):
                    if isinstance(node, (ast.Import, ast.ImportFrom)) and not re.search(r"#.*\blazy: \w", lines[node.lineno - 1]):
                        unmarked.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not unmarked, unmarked


def test_module_names_are_unique_and_modules_and_signatures_stay_small():
    """A reader finds a behaviour from a module's name: no name twice, no module over 400 lines, no function over 8 parameters."""
    names: dict[str, list[str]] = {}
    too_long, too_wide = [], []
    for path in _modules():
        text = path.read_text()
        if path.name != "__init__.py":
            names.setdefault(path.stem, []).append(str(path.relative_to(ROOT)))
        if text.count("\n") > 400:
            too_long.append(str(path.relative_to(ROOT)))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args
                positional = [a.arg for a in args.posonlyargs + args.args]
                count = len(positional) + len(args.kwonlyargs) + bool(args.vararg) + bool(args.kwarg) - (positional[:1] in (["self"], ["cls"]))
                if count > 8:
                    too_wide.append(f"{path.relative_to(ROOT)}:{node.name}")
    assert not {name: paths for name, paths in names.items() if len(paths) > 1}
    assert not too_long and not too_wide, (too_long, too_wide)


def _test_imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) of every `from X import name` and (module, "") of every `import X` in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
    return found


def test_tests_import_neither_other_tests_nor_private_names():
    """Shared helpers live in tests/support and fixtures in conftest files; tests use the code's
    public names only, so a rename inside a module never breaks a test of another module."""
    problems = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for module, name in _test_imports(path):
            top = module.split(".")[0]
            if top == "tests" and not module.startswith("tests.support"):
                problems.append(f"{path.relative_to(ROOT)} imports {module}")
            if top in LIBRARY and (name.startswith("_") or any(part.startswith("_") for part in module.split(".")[1:] if part != "__main__")):
                problems.append(f"{path.relative_to(ROOT)} imports {module}.{name}")
    assert problems == []
