-- Every stored forecast row beside its actual once that has arrived (actual and errors are NULL until then),
-- and the seasonal-naive forecast from the same origin scored the same way; `method` says how the forecast was made.
CREATE VIEW forecast_vs_actual AS
SELECT
    f.model_name, f.model_version, f.series_id, f.forecast_origin, f.target_ts, f.step,
    f.yhat, f.yhat_lower_80, f.yhat_upper_80, f.yhat_lower_95, f.yhat_upper_95,
    e.actual, e.error, e.abs_error, e.smape_term, e.scaled_error, e.inside_80, e.inside_95,
    e.naive_yhat, e.naive_error, e.naive_abs_error, e.naive_smape_term, e.naive_scaled_error,
    e.scored_at, f.method
FROM forecasts AS f
LEFT JOIN forecast_errors AS e
  ON e.model_name = f.model_name
 AND e.series_id = f.series_id
 AND e.forecast_origin = f.forecast_origin
 AND e.target_ts = f.target_ts
