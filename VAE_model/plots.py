"""Figures shared by the stages: colour composites, image grids, loss curves (PNG, Agg backend)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Stretched (3, H, W) g, r, z image in [0, 1] -> (H, W, 3) display RGB (z->R, r->G, g->B)."""
    image = np.asarray(image, dtype=np.float32)
    return np.clip(np.stack([image[2], image[1], image[0]], axis=-1), 0, 1)


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG (creating the folder) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def save_image_grid(rows: list[list[np.ndarray]], path: str | Path, row_labels: list[str] | None = None,
                    col_labels: list[str] | None = None, cell_inches: float = 1.2, title: str | None = None) -> Path:
    """Save a grid of (3, H, W) images; empty cells may be None."""
    n_rows, n_cols = len(rows), max(len(row) for row in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(cell_inches * n_cols + 1.2, cell_inches * n_rows + 0.4),
                             squeeze=False)
    for r, row in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([]), ax.set_yticks([])
            if c < len(row) and row[c] is not None:
                ax.imshow(to_rgb(row[c]), origin="lower")
            else:
                ax.axis("off")
            if row_labels and c == 0:
                ax.set_ylabel(row_labels[r], fontsize=7)
            if col_labels and r == 0 and c < len(col_labels):
                ax.set_title(col_labels[c], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def save_loss_curve(history: list[dict], path: str | Path) -> Path:
    epochs = [row["epoch"] for row in history]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(epochs, [row["train_loss"] for row in history], label="train")
    if history and "val_loss" in history[0]:
        ax.plot(epochs, [row["val_loss"] for row in history], label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss per image (summed MSE + beta KL)")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)
