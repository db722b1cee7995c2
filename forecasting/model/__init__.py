"""The recurrent network and its lifecycle: the forecaster, training, tuning, prediction, artifacts, derived defaults."""
