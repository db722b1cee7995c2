-- Newest forecast origin per model and series: what downstream reporting usually wants.
CREATE VIEW forecast_latest AS
SELECT f.*
FROM forecasts AS f
JOIN (
    SELECT model_name, series_id, MAX(forecast_origin) AS forecast_origin
    FROM forecasts
    GROUP BY model_name, series_id
) AS latest
  ON f.model_name = latest.model_name
 AND f.series_id = latest.series_id
 AND f.forecast_origin = latest.forecast_origin
