"""Writes examples/bars.npz: 600 noisy 8×8 images of a horizontal, a vertical or a diagonal bar
(classes 0, 1, 2), X (600, 1, 8, 8) float32 and one-hot Y (600, 3). Deterministic (seed 0)."""
from pathlib import Path

import numpy as np

rng = np.random.default_rng(0)
n = 600
X = rng.normal(0.0, 0.3, (n, 1, 8, 8))
labels = rng.integers(0, 3, n)
for i, label in enumerate(labels):
    k = rng.integers(1, 7)
    if label == 0:
        X[i, 0, k, :] += 1.0
    elif label == 1:
        X[i, 0, :, k] += 1.0
    else:
        X[i, 0][np.eye(8, k=k - 3, dtype=bool)] += 1.0
np.savez_compressed(Path(__file__).with_name("bars.npz"), X=X.astype(np.float32), Y=np.eye(3)[labels].astype(np.float32))
