"""How good the forecasts are: metrics and baselines, live accuracy as actuals arrive, rolling-origin backtests."""
