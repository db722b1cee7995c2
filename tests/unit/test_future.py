"""Covariates known in advance: future rows, the future block, the two-input network, no leakage."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from forecasting.model.backtesting import cut
from forecasting.config.settings import ModelConfig, SourceConfig
from forecasting.errors import InputError
from forecasting.model.forecaster import RecurrentForecaster
from forecasting.model.inputs import InputSpec
from forecasting.preparation.future_inputs import training_blocks
from forecasting.preparation.windows import build_arrays
from forecasting.preparation.future_rows import FUTURE_ROW_REASON, FutureRows, last_observed, split_future
from forecasting.model.network import build_model, future_inputs
from forecasting.preparation.validation import screen
from forecasting.preparation.windows import to_series_arrays
from tests.support.data import TINY_MODEL, promotion_frame, synthetic_frame

COMMITTED_V2 = Path(__file__).parents[1] / "data" / "artifact-v2"
SOURCE = SourceConfig(future_features=["promo"], frequency="MS")


def promo_arrays(frame: pd.DataFrame, source: SourceConfig = SOURCE, calendar: bool = True):
    observed, ahead = split_future(frame)
    return build_arrays(observed, ahead, source, "MS", calendar)


@pytest.fixture(scope="module")
def trained():
    frame = promotion_frame(n_series=6, length=40, ahead=6)
    arrays = promo_arrays(frame)
    config = ModelConfig(**{**TINY_MODEL, "calendar": True, "epochs": 2, "refit": False})
    return frame, arrays, RecurrentForecaster.fit(arrays, config, future_features=("promo",)).forecaster


def test_future_features_must_not_overlap_the_past_features_or_the_keys():
    with pytest.raises(ValidationError, match=r"\['promo'\] are also in source.features"):
        SourceConfig(features=["promo"], future_features=["promo"])
    with pytest.raises(ValidationError, match="series, time or target column"):
        SourceConfig(future_features=["value"])
    with pytest.raises(ValidationError, match="future_fill"):
        SourceConfig(future_features=["promo"], future_fill="mean")


def test_an_empty_target_is_a_future_row_only_after_the_last_observation():
    ts = pd.date_range("2024-01-01", periods=8, freq="MS")
    value = [1.0, 2.0, np.nan, 4.0, 5.0, np.nan, np.nan, np.nan]
    promo = [0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, np.nan]
    frame = pd.DataFrame({"series_id": "A", "ts": ts, "value": value, "promo": promo})
    future = FutureRows(last_observed(frame), ("promo",))
    screened = screen(frame, "MS", 1.0, future=future)
    reasons = dict(zip(screened.quarantined["ts"], screened.quarantined["reason"]))
    # Before the last observation (May) an empty target is unusable as ever; after it, a row is a
    # future row, unusable only when its future value is missing.
    assert reasons == {ts[2]: "value missing or not finite", ts[7]: FUTURE_ROW_REASON}
    assert list(screened.clean["ts"]) == [ts[0], ts[1], ts[3], ts[4], ts[5], ts[6]]
    # Without future features every empty target is quarantined, as before.
    assert len(screen(frame, "MS", 1.0).quarantined) == 4


def test_the_future_block_holds_the_future_columns_at_the_target_periods_never_the_target():
    values = np.column_stack([np.arange(20.0), np.arange(20.0) * 10, np.arange(20.0) * 100])
    blocks = training_blocks(values, (2,), lookback=5, horizon=3)
    assert blocks.shape == (13, 3, 1)
    np.testing.assert_array_equal(blocks[0, :, 0], [500.0, 600.0, 700.0])  # rows 5..7: the first window's targets
    rewritten = values.copy()
    rewritten[:, :2] = -1.0  # target and past feature
    np.testing.assert_array_equal(training_blocks(rewritten, (2,), 5, 3), blocks)


def test_prepared_arrays_carry_the_future_rows_and_calendar_for_the_forecast_periods():
    arrays = promo_arrays(promotion_frame(n_series=2, length=30, ahead=4))
    assert arrays.future_columns == (1, 2, 3) and arrays.future_count == 1  # promo, then month sine/cosine
    assert arrays.values["P00"].shape == (30, 4)
    assert list(arrays.future_timestamps["P00"]) == list(pd.date_range("2020-07-01", periods=4, freq="MS"))
    assert arrays.future["P00"].shape == (4, 3)


def test_one_input_network_without_future_features_two_inputs_with():
    config = ModelConfig(**TINY_MODEL)
    plain = build_model(config, n_inputs=3)
    assert len(plain.inputs) == 1 and future_inputs(plain) == 0 and not any("future" in layer.name for layer in plain.layers)
    two = build_model(ModelConfig(**{**TINY_MODEL, "ensemble": {"members": 2}}), n_inputs=3, n_future=2)
    assert [tensor.shape[1:] for tensor in two.inputs] == [(12, 3), (6, 2)] and future_inputs(two) == 2


@pytest.mark.slow
def test_rewriting_targets_after_the_origin_changes_nothing(trained):
    frame, arrays, forecaster = trained
    origin = pd.Timestamp("2020-10-01")  # 6 periods before the last observation
    rewritten = frame.copy()
    later = (rewritten["ts"] > origin) & rewritten["value"].notna()
    rewritten.loc[later, "value"] = rewritten.loc[later, "value"] * 7 + 1000
    known, actuals = cut(arrays, origin, 6, "MS")
    known_rewritten, actuals_rewritten = cut(promo_arrays(rewritten), origin, 6, "MS")
    assert not actuals["value"].equals(actuals_rewritten["value"])  # the rewrite did change the targets
    for series_id in known.values:
        np.testing.assert_array_equal(known.values[series_id], known_rewritten.values[series_id])
        np.testing.assert_array_equal(known.future[series_id], known_rewritten.future[series_id])
    first = forecaster.predict(known).forecasts
    second = forecaster.predict(known_rewritten).forecasts
    assert len(first) == 6 * 6
    pd.testing.assert_frame_equal(first, second)


def test_missing_future_values_name_the_series_and_periods_or_are_filled(trained):
    frame, _, forecaster = trained
    gap = frame.drop(frame.index[(frame["series_id"] == "P02") & (frame["ts"] >= "2021-08-01")])
    arrays = promo_arrays(gap)
    with pytest.raises(InputError, match=r"series P02: future feature values missing for 3 of the 6 forecast periods "
                       r"\(2021-08-01 00:00:00, 2021-09-01 00:00:00, 2021-10-01 00:00:00\)") as error:
        forecaster.predict(arrays)
    assert error.value.exit_code == 2
    for fill in ("zero", "last"):
        filled = forecaster.predict(promo_arrays(gap, SOURCE.model_copy(update={"future_fill": fill}))).forecasts
        assert len(filled) == 6 * 6 and np.isfinite(filled["yhat"]).all()


def test_future_features_are_saved_and_loaded_with_the_version(trained, tmp_path):
    _, arrays, forecaster = trained
    manifest = forecaster.save(tmp_path)
    assert manifest["future_features"] == ["promo"]
    loaded = RecurrentForecaster.load(tmp_path)
    assert loaded.future_features == ("promo",) and future_inputs(loaded.network) == 3
    assert loaded.inputs == forecaster.inputs == InputSpec("MS", (), ("promo",), True, 12, 6, 12)
    pd.testing.assert_frame_equal(loaded.predict(arrays).forecasts, forecaster.predict(arrays).forecasts)
    assert loaded.score_holdout(arrays, "mae")["series"] == 6


def test_a_version_saved_before_future_features_loads_and_forecasts():
    forecaster = RecurrentForecaster.load(COMMITTED_V2)
    assert "future_features" not in (COMMITTED_V2 / "manifest.json").read_text()
    assert forecaster.future_features == () and future_inputs(forecaster.network) == 0
    arrays = to_series_arrays(synthetic_frame(n_series=3), list(forecaster.features), "MS", forecaster.calendar)
    forecasts = forecaster.predict(arrays).forecasts
    assert len(forecasts) == 3 * forecaster.horizon and np.isfinite(forecasts["yhat"]).all()


def test_gap_filling_and_staleness_ignore_the_future_rows():
    from forecasting.steps.data import stale_series

    frame = promotion_frame(n_series=2, length=30, ahead=4)
    frame = frame.drop(frame.index[(frame["series_id"] == "P00") & (frame["ts"] == "2020-08-01")])  # a plan missing mid-horizon
    observed, ahead = split_future(frame)
    arrays = build_arrays(observed, ahead, SOURCE.model_copy(update={"gaps": "zero"}), "MS")
    assert np.isnan(arrays.future["P00"][1, 0]) and np.isfinite(np.delete(arrays.future["P00"][:, 0], 1)).all()  # not zero-filled
    assert {sid: len(values) for sid, values in arrays.values.items()} == {"P00": 30, "P01": 30}
    # P01's last observation is as recent as P00's, whatever their future rows: neither is stale.
    shorter = frame.drop(frame.index[(frame["series_id"] == "P01") & frame["value"].isna()])
    assert stale_series(split_future(shorter)[0], "MS", 1) == {}


def test_plans_months_ahead_of_now_are_kept_and_only_observed_rows_meet_max_future():
    from forecasting.runtime.clock import utc_now

    this_month = pd.Timestamp(utc_now()).tz_localize(None).normalize().replace(day=1)
    ts = pd.date_range(this_month - pd.DateOffset(months=5), periods=6 + 18, freq="MS")
    value = [float(i + 1) for i in range(6)] + [np.nan] * 18  # observed up to this month, then an 18-month plan
    frame = pd.DataFrame({"series_id": "A", "ts": ts, "value": value, "promo": 1.0})
    latest = pd.Timestamp(utc_now()).tz_localize(None) + pd.Timedelta("92D")  # the default source.max_future
    screened = screen(frame, "MS", 0.2, latest_allowed=latest, future=FutureRows(last_observed(frame), ("promo",)))
    assert screened.quarantined.empty and not screened.skipped and len(screened.clean) == 24
    # Plans are bounded per series instead: more than max_periods after its last observation.
    bounded = screen(frame, "MS", 1.0, latest_allowed=latest, future=FutureRows(last_observed(frame), ("promo",), 12))
    assert list(bounded.quarantined["ts"]) == list(ts[6 + 12 :])
    assert bounded.quarantined["reason"].str.contains("source.max_future_periods").all()
    # An observed row beyond max_future is still quarantined.
    late = pd.concat([frame, pd.DataFrame({"series_id": ["B"], "ts": [ts[-1]], "value": [1.0], "promo": [0.0]})], ignore_index=True)
    reasons = screen(late, "MS", 1.0, latest_allowed=latest, future=FutureRows(last_observed(late), ("promo",))).quarantined
    assert list(reasons["series_id"]) == ["B"] and "source.max_future" in reasons["reason"].iloc[0]


def test_observed_only_refuses_a_frame_without_the_target():
    from forecasting.preparation.future_rows import observed_only

    frame = pd.DataFrame({"series_id": ["A", "A"], "ts": pd.date_range("2024-01-01", periods=2, freq="MS"), "value": [1.0, np.nan]})
    assert len(observed_only(frame)) == 1
    with pytest.raises(ValueError, match="value column"):
        observed_only(frame[["series_id", "ts"]])


def test_missing_plans_name_every_series_with_its_periods_and_the_quarantine_table(trained):
    frame, _, forecaster = trained
    gap = frame.drop(frame.index[frame["series_id"].isin(["P01", "P04"]) & (frame["ts"] >= "2021-10-01")])
    with pytest.raises(InputError) as error:
        forecaster.predict(promo_arrays(gap))
    message = str(error.value)
    assert message.startswith("2 series lack future feature values: series P01: future feature values missing for 1 of the 6 forecast "
                              "periods (2021-10-01 00:00:00); series P04: future feature values missing for 1 of the 6")
    assert "quarantine table" in message and "\n" not in message


def test_a_network_handed_another_future_width_is_a_clear_error(trained):
    from forecasting.errors import ConfigError

    frame, arrays, forecaster = trained
    observed, ahead = split_future(frame)
    plain = build_arrays(observed, ahead, SOURCE, "MS", True, future=[])  # no future columns
    for call in (lambda: forecaster.predict(plain), lambda: forecaster.score_holdout(plain, "smape"), lambda: forecaster.fine_tune(plain)):
        with pytest.raises(ConfigError, match=r"the network reads \d+ future input columns \(future_features \['promo'\] and calendar\), "
                           r"the data carries 0 \(future features \[\]\)") as error:
            call()
        assert "\n" not in str(error.value) and error.value.exit_code == 2


def test_fit_records_the_future_columns_of_its_arrays(trained):
    _, arrays, _ = trained
    config = ModelConfig(**{**TINY_MODEL, "calendar": True, "epochs": 1, "refit": False})
    assert RecurrentForecaster.fit(arrays, config).forecaster.future_features == ("promo",)


def test_the_forecaster_prepares_the_arrays_it_reads_from_pulled_rows(trained):
    frame, arrays, forecaster = trained
    observed, ahead = split_future(frame)
    # The source asks for no future features and no calendar: the forecaster's own inputs win.
    prepared = forecaster.prepare(observed, ahead, SourceConfig(frequency="MS"))
    assert prepared.future_columns == arrays.future_columns and prepared.future_names == ("promo",)
    for series_id in arrays.values:
        np.testing.assert_array_equal(prepared.values[series_id], arrays.values[series_id])
        np.testing.assert_array_equal(prepared.future[series_id], arrays.future[series_id])
    pd.testing.assert_frame_equal(forecaster.predict(prepared).forecasts, forecaster.predict(arrays).forecasts)
