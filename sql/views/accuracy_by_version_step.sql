-- Live accuracy per model version and forecast step (step 0: all steps together), with the
-- seasonal-naive forecasts from the same origins beside it. mase is the mean scaled error.
CREATE VIEW accuracy_by_version_step AS
SELECT model_name, model_version, step,
    COUNT(*) AS scored,
    COUNT(DISTINCT series_id) AS series,
    AVG(abs_error) AS mae,
    AVG(smape_term) AS smape,
    AVG(scaled_error) AS mase,
    AVG(CASE WHEN inside_80 THEN 100.0 WHEN NOT inside_80 THEN 0.0 END) AS coverage_80,
    AVG(CASE WHEN inside_95 THEN 100.0 WHEN NOT inside_95 THEN 0.0 END) AS coverage_95,
    AVG(naive_abs_error) AS naive_mae,
    AVG(naive_smape_term) AS naive_smape,
    AVG(naive_scaled_error) AS naive_mase
FROM forecast_errors
GROUP BY model_name, model_version, step
UNION ALL
SELECT model_name, model_version, 0 AS step,
    COUNT(*) AS scored,
    COUNT(DISTINCT series_id) AS series,
    AVG(abs_error) AS mae,
    AVG(smape_term) AS smape,
    AVG(scaled_error) AS mase,
    AVG(CASE WHEN inside_80 THEN 100.0 WHEN NOT inside_80 THEN 0.0 END) AS coverage_80,
    AVG(CASE WHEN inside_95 THEN 100.0 WHEN NOT inside_95 THEN 0.0 END) AS coverage_95,
    AVG(naive_abs_error) AS naive_mae,
    AVG(naive_smape_term) AS naive_smape,
    AVG(naive_scaled_error) AS naive_mase
FROM forecast_errors
GROUP BY model_name, model_version
