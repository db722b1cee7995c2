"""View definitions as earlier migrations made them: sql/views/ holds the current ones, which read columns
later migrations add, so a migration that makes a view reads its text here (as 0001 keeps its own)."""

FORECAST_VS_ACTUAL_0007 = """
CREATE VIEW forecast_vs_actual AS
SELECT
    f.model_name, f.model_version, f.series_id, f.forecast_origin, f.target_ts, f.step,
    f.yhat, f.yhat_lower_80, f.yhat_upper_80, f.yhat_lower_95, f.yhat_upper_95,
    e.actual, e.error, e.abs_error, e.smape_term, e.scaled_error, e.inside_80, e.inside_95,
    e.naive_yhat, e.naive_error, e.naive_abs_error, e.naive_smape_term, e.naive_scaled_error,
    e.scored_at
FROM forecasts AS f
LEFT JOIN forecast_errors AS e
  ON e.model_name = f.model_name
 AND e.series_id = f.series_id
 AND e.forecast_origin = f.forecast_origin
 AND e.target_ts = f.target_ts
"""

ANOMALIES_0010 = """
CREATE VIEW anomalies AS
SELECT
    e.model_name, e.series_id, e.target_ts, e.actual, e.yhat,
    f.yhat_lower_95 AS lower_95, f.yhat_upper_95 AS upper_95,
    e.interval_distance,
    CASE WHEN e.actual > f.yhat_upper_95 THEN 'above' ELSE 'below' END AS direction,
    e.model_version, e.forecast_origin, e.step, e.run_id, e.scored_at
FROM forecast_errors AS e
JOIN forecasts AS f
  ON f.model_name = e.model_name
 AND f.series_id = e.series_id
 AND f.forecast_origin = e.forecast_origin
 AND f.target_ts = e.target_ts
WHERE e.anomaly
"""
