"""One run at a time per model, across processes, on SQLite (file lock) and PostgreSQL (advisory lock)."""

import subprocess
import sys
import time

import pytest

from forecasting.sources.database import create_db_engine
from forecasting.errors import RunError
from forecasting.sources.locking import model_lock

HOLD = """
import sys, time
from pathlib import Path
from forecasting.sources.database import create_db_engine
from forecasting.sources.locking import model_lock
with model_lock(create_db_engine(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], timeout=30):
    print("locked", flush=True)
    time.sleep(float(sys.argv[4]))
"""


def hold_lock(url, storage, model, seconds):
    process = subprocess.Popen([sys.executable, "-c", HOLD, url, str(storage), model, str(seconds)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "locked"
    return process


def test_second_run_waits_for_the_first_and_other_models_do_not(database_url, tmp_path):
    engine = create_db_engine(database_url)
    holder = hold_lock(database_url, tmp_path, "m", 3)
    try:
        started = time.monotonic()
        with model_lock(engine, tmp_path, "other", timeout=5) as waited:
            assert waited < 1  # a different model is free
        with pytest.raises(RunError, match="model 'm' is busy: another run held its lock for more than 0.5 s"):
            with model_lock(engine, tmp_path, "m", timeout=0.5):
                pass
        with model_lock(engine, tmp_path, "m", timeout=30) as waited:
            assert waited >= 1.5  # it waited for the holder to finish its 3 s
        assert time.monotonic() - started < 20
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_releases_the_lock(database_url, tmp_path):
    engine = create_db_engine(database_url)
    holder = hold_lock(database_url, tmp_path, "m", 60)
    holder.kill()
    holder.wait()
    with model_lock(engine, tmp_path, "m", timeout=10) as waited:
        assert waited < 10


@pytest.mark.postgres
def test_deployments_in_other_schemas_of_one_database_do_not_share_a_models_lock(postgres_admin_url, tmp_path):
    from tests.support.postgres_server import create_database

    url = create_database(postgres_admin_url)
    with create_db_engine(url).begin() as connection:
        connection.exec_driver_sql("CREATE SCHEMA alpha; CREATE SCHEMA beta")
    alpha, beta, alpha_again = create_db_engine(url, "alpha"), create_db_engine(url, "beta"), create_db_engine(url, "alpha")
    with model_lock(alpha, tmp_path, "m", timeout=5):
        with model_lock(beta, tmp_path, "m", timeout=0.5) as waited:
            assert waited < 0.5  # another deployment's model of the same name is free
        with pytest.raises(RunError, match="model 'm' is busy"):
            with model_lock(alpha_again, tmp_path, "m", timeout=0.5):
                pass
