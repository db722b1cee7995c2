-- Live accuracy per model and target period (all versions and steps whose target fell in it):
-- how the error moves period by period, with seasonal naive beside it.
CREATE VIEW accuracy_by_period AS
SELECT model_name, target_ts,
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
GROUP BY model_name, target_ts
