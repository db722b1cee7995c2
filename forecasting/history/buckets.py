"""Which of the history store's bucket files a series lives in: a stable hash of its id."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

BUCKETS = 16


def bucket_of(series_ids: pd.Series) -> np.ndarray:
    """Stable bucket number (0..BUCKETS-1) of each series id."""
    unique = pd.unique(series_ids)
    lookup = {sid: int.from_bytes(hashlib.sha1(str(sid).encode()).digest()[:4], "big") % BUCKETS for sid in unique}
    return series_ids.map(lookup).to_numpy()
