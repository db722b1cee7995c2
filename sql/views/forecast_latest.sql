-- Newest forecast origin per model and series: what downstream reporting usually wants.
-- Series the source no longer holds (deleted or renamed there) are left out once a committed pull has
-- seen them gone (ingestion_series lists what the last committed pull saw); a series forecast after the
-- last committed pull (its run not committed yet) shows. Their rows stay in `forecasts`.
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
WHERE EXISTS (SELECT 1 FROM ingestion_series AS s WHERE s.series_id = f.series_id)
   OR NOT EXISTS (SELECT 1 FROM ingestion_state AS st WHERE st.updated_at >= f.created_at)
