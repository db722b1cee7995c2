-- Arriving actuals outside the 95% interval of the newest forecast made for their period (forecast_errors.anomaly),
-- newest first when ordered by target_ts: the forecast and its band beside the actual, how far out in half-widths of
-- the band (NULL for a zero-width band), which side, the model version and origin that made the forecast, and how
-- (forecasts.method: network, short_history, constant).
CREATE VIEW anomalies AS
SELECT
    e.model_name, e.series_id, e.target_ts, e.actual, e.yhat,
    f.yhat_lower_95 AS lower_95, f.yhat_upper_95 AS upper_95,
    e.interval_distance,
    CASE WHEN e.actual > f.yhat_upper_95 THEN 'above' ELSE 'below' END AS direction,
    e.model_version, e.forecast_origin, e.step, e.run_id, e.scored_at, f.method
FROM forecast_errors AS e
JOIN forecasts AS f
  ON f.model_name = e.model_name
 AND f.series_id = e.series_id
 AND f.forecast_origin = e.forecast_origin
 AND f.target_ts = e.target_ts
WHERE e.anomaly
