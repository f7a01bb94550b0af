"""Row lineage: the content hash that identifies a row across runs (published ids, exact copies, dedup).
Shared by the pipeline (row ids) and every modality that compares rows."""
from __future__ import annotations

import numpy as np
import pandas as pd


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """Content hash of each row (data columns only), stable across runs and dtypes."""
    canon = frame.astype(str).where(frame.notna(), "<NA>")
    return pd.util.hash_pandas_object(canon, index=False).to_numpy(dtype=np.uint64)
