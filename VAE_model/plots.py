"""Figures shared by the stages: colour composites, image grids, loss curves (PNG, Agg backend).

Every thumbnail and gallery uses one colour rendering, the Legacy Survey viewer's (``render_rgb``),
drawn with origin lower so galaxies are oriented as in the viewer (north up, east left).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402

from .imageio import BANDS, inverse_asinh_stretch  # noqa: E402


def __getattr__(name: str):
    """``plots.plt``: pyplot, imported on first use (~0.15 s of CPU): the image grid, a similarity query's
    gallery, draws on a bare Agg figure without it."""
    if name == "plt":
        import matplotlib.pyplot as plt

        return plt
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# The Legacy Survey viewer's colour rendering of g, r, z nanomaggies (legacysurvey/imagine
# map/views.py, ``dr2_rgb`` -> ``sdss_rgb``; the Lupton et al. 2004 asinh scheme on the summed
# intensity, so colours survive in bright cores): band -> (RGB plane, scale), offset m, softening Q.
LEGACY_RGB_SCALES = {"g": (2, 6.0), "r": (1, 3.4), "z": (0, 2.2)}
LEGACY_RGB_OFFSET = 0.03
LEGACY_RGB_Q = 20.0


def render_rgb_flux(flux_grz: np.ndarray) -> np.ndarray:
    """(3, H, W) g, r, z flux in nanomaggies -> (H, W, 3) uint8 RGB as the Legacy Survey viewer draws it.

    Rows stay in FITS order (row 0 = south): draw with ``imshow(..., origin="lower")`` for north up,
    east left, as in the viewer."""
    flux = np.nan_to_num(np.asarray(flux_grz, dtype=np.float32))
    scaled = {band: np.maximum(0.0, plane * LEGACY_RGB_SCALES[band][1] + LEGACY_RGB_OFFSET)
              for band, plane in zip(BANDS, flux)}
    intensity = sum(scaled.values()) / len(BANDS)
    f_intensity = np.arcsinh(LEGACY_RGB_Q * intensity) / np.sqrt(LEGACY_RGB_Q)
    intensity = intensity + (intensity == 0) * 1e-6
    rgb = np.zeros(flux.shape[1:] + (3,), np.float32)
    for band, value in scaled.items():
        rgb[:, :, LEGACY_RGB_SCALES[band][0]] = value * f_intensity / intensity
    return np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def render_rgb(image: np.ndarray) -> np.ndarray:
    """Network input / cache image ((3, H, W) g, r, z, asinh-stretched to [0, 1], or uint8 0-255)
    -> (H, W, 3) uint8 in the viewer's rendering (the stretch is inverted to nanomaggies first; sky
    below 0 was clipped by it). Images made from PNG/JPG renders go through the same inversion, so
    they are shown in the same colours, not as their original picture."""
    image = np.asarray(image)
    stretched = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
    return render_rgb_flux(inverse_asinh_stretch(np.clip(stretched, 0, 1)))


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Stretched (3, H, W) g, r, z image in [0, 1] -> (H, W, 3) float RGB in [0, 1] (``render_rgb``)."""
    return render_rgb(image).astype(np.float32) / 255.0


def show_image(ax, image: np.ndarray) -> None:
    """Draw a (3, H, W) g, r, z image on ``ax`` north up, east left (FITS rows, origin lower)."""
    ax.imshow(render_rgb(image), origin="lower", interpolation="nearest")


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG (creating the folder) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    if fig.canvas.manager is not None:   # a pyplot figure: pyplot holds it until closed
        import matplotlib.pyplot as plt

        plt.close(fig)
    return path


def save_image_grid(rows: list[list[np.ndarray]], path: str | Path, row_labels: list[str] | None = None,
                    col_labels: list[str] | None = None, cell_inches: float = 1.2, title: str | None = None) -> Path:
    """Save a grid of (3, H, W) images; empty cells may be None. A bare Agg figure, not pyplot's (the same
    PNG without importing pyplot: a similarity query draws one grid per process)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n_rows, n_cols = len(rows), max(len(row) for row in rows)
    fig = Figure(figsize=(cell_inches * n_cols + 1.2, cell_inches * n_rows + 0.4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for r, row in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([]), ax.set_yticks([])
            if c < len(row) and row[c] is not None:
                show_image(ax, row[c])
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
    import matplotlib.pyplot as plt

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
