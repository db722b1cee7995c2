"""The library/orchestration split DESIGN.md asks for."""

import pkgutil
import subprocess
import sys

import forecasting


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
