"""Observations pulled from the source and kept locally: the incremental pull, quarantine, the history store and its cache."""
