"""Figures shared by the stages: colour composites, image grids (Pillow), loss curves (matplotlib, Agg backend).

Every thumbnail and gallery uses one colour rendering, the Legacy Survey viewer's (``render_rgb``),
drawn with origin lower so galaxies are oriented as in the viewer (north up, east left).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .imageio import BANDS, inverse_asinh_stretch


def _pyplot():
    """pyplot on the Agg backend (files only, no window), imported on first use: matplotlib and pyplot cost
    ~0.6 s of CPU, which the image grid (a similarity query's gallery, drawn with Pillow) does without."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def __getattr__(name: str):
    """``plots.plt``: pyplot (``_pyplot``), for the stages that draw plots."""
    if name == "plt":
        return _pyplot()
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


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG (creating the folder) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    if fig.canvas.manager is not None:   # a pyplot figure: pyplot holds it until closed
        _pyplot().close(fig)
    return path


GRID_DPI = 110              # pixels per inch of the image grids (save_figure's default, so sizes stay as they were)
GRID_LABEL_PT, GRID_TITLE_PT = 7, 9


def _grid_font(points: float):
    """DejaVu Sans (the font matplotlib ships and draws with) at ``points`` on the grid's dpi; found without
    importing matplotlib; Pillow's own font when it is not there."""
    import importlib.util

    from PIL import ImageFont

    size = max(1, round(points * GRID_DPI / 72))
    spec = importlib.util.find_spec("matplotlib")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        font = Path(folder) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if font.exists():
            return ImageFont.truetype(str(font), size)
    return ImageFont.load_default(size)


def save_image_grid(rows: list[list[np.ndarray]], path: str | Path, row_labels: list[str] | None = None,
                    col_labels: list[str] | None = None, cell_inches: float = 1.2, title: str | None = None) -> Path:
    """Save a grid of (3, H, W) images as PNG; empty cells may be None. Each image in the viewer's colours
    (``render_rgb``), north up, scaled to ``cell_inches`` at 110 dpi by pixel repetition (no smoothing), a
    thin frame around it, column labels above the first row, row labels rotated on the left, ``title`` on top.

    Drawn with Pillow, not matplotlib: a similarity query draws one grid per new process, and importing and
    laying out matplotlib took ~0.9 s of its CPU (Figure + Agg canvas), Pillow ~0.1 s."""
    from PIL import Image, ImageDraw

    n_rows, n_cols = len(rows), max(len(row) for row in rows)
    label_font, title_font = _grid_font(GRID_LABEL_PT), _grid_font(GRID_TITLE_PT)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def text_size(text, font):
        if not text:
            return 0, 0
        left, top, right, bottom = probe.multiline_textbbox((0, 0), text, font=font, align="center")
        return math.ceil(right - min(left, 0)), math.ceil(bottom - min(top, 0))

    pad = max(2, round(0.04 * GRID_DPI))
    side = round(cell_inches * GRID_DPI) - 2 * pad                   # an image's side in pixels
    col_band = max((text_size(label, label_font)[1] for label in (col_labels or [])), default=0)
    col_band += pad if col_band else 0
    row_band = max((text_size(label, label_font)[1] for label in (row_labels or [])), default=0)
    row_band += pad if row_band else 0
    title_band = text_size(title, title_font)[1] + 3 * pad if title else 0
    width = row_band + n_cols * (side + 2 * pad) + pad
    height = title_band + col_band + n_rows * (side + 2 * pad) + pad
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.multiline_text((width // 2, pad), title, fill="black", font=title_font, anchor="ma", align="center")
    for r, row in enumerate(rows):
        top = title_band + col_band + r * (side + 2 * pad) + pad
        for c in range(n_cols):
            left = row_band + c * (side + 2 * pad) + pad
            if c < len(row) and row[c] is not None:
                picture = Image.fromarray(np.ascontiguousarray(render_rgb(row[c])[::-1]))   # FITS row 0 at the bottom
                canvas.paste(picture.resize((side, side), Image.NEAREST), (left, top))
                draw.rectangle((left - 1, top - 1, left + side, top + side), outline="black")
            if col_labels and r == 0 and c < len(col_labels) and col_labels[c]:
                label_height = text_size(col_labels[c], label_font)[1]
                draw.multiline_text((left + side // 2, top - pad - label_height), col_labels[c], fill="black",
                                    font=label_font, anchor="ma", align="center")
        if row_labels and row_labels[r]:
            label_width, label_height = text_size(row_labels[r], label_font)
            label = Image.new("RGB", (label_width + 2, label_height + 2), "white")
            ImageDraw.Draw(label).multiline_text((label_width // 2 + 1, 0), row_labels[r], fill="black",
                                                 font=label_font, anchor="ma", align="center")
            label = label.rotate(90, expand=True)                      # read bottom to top, as a y-axis label
            canvas.paste(label, (max(0, row_band - pad - label.width), top + (side - label.height) // 2))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, dpi=(GRID_DPI, GRID_DPI))
    return path


def save_loss_curve(history: list[dict], path: str | Path) -> Path:
    plt = _pyplot()
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
