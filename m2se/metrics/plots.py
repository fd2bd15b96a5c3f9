"""A confusion matrix as a picture: rows gold, columns predicted, last column "no answer"."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_confusion(
    labels: Sequence[str], matrix: Sequence[Sequence[int]], path: str | Path, title: str = ""
) -> Path:
    """Counts with row-normalised colour (recall per gold class), so small classes stay visible."""
    counts = np.asarray(matrix)
    rows = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, rows, out=np.zeros(counts.shape, dtype=float), where=rows > 0)
    columns = [*labels, "no answer"][: counts.shape[1]]
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(columns), 1.0 + 0.65 * len(labels)))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), n in np.ndenumerate(counts):
        ax.text(
            j,
            i,
            str(n),
            ha="center",
            va="center",
            fontsize=8,
            color="white" if shares[i, j] > 0.6 else "black",
        )
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(f"{title} confusion (colour: share of the gold row)" if title else "confusion", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
