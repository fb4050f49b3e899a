"""Part II figures: most/least alike pair galleries and paired vs random distance histograms.

READS   nothing but its arguments
WRITES  the PNG given as ``path``
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

def save_pair_gallery(distances: pd.DataFrame, decals_cache, bass_cache, path, most_alike: bool,
                      n: int = 8, split: str = "test") -> Path:
    """Test pairs ordered by latent distance (most or least alike first): DECaLS above BASS+MzLS."""
    from ..plots import save_image_grid

    chosen = distances[distances["split"] == split].sort_values("latent_distance", ascending=most_alike).head(n)
    rows = chosen["pair_id"].to_numpy()
    decals = [np.asarray(decals_cache[i], np.float32) / 255.0 for i in rows]
    bass = [np.asarray(bass_cache[i], np.float32) / 255.0 for i in rows]
    labels = [f"{name[:10]}\nd = {d:.2f}" for name, d in zip(chosen["decals_iauname"], chosen["latent_distance"])]
    kind = "most alike" if most_alike else "least alike"
    return save_image_grid([decals, bass], path, row_labels=["DECaLS", "BASS+MzLS"], col_labels=labels,
                           title=f"{kind} {split} pairs by latent distance (Part I model)")


def save_distance_histograms(panels: dict[str, tuple[np.ndarray, np.ndarray]], path, normalise: bool = True) -> Path:
    """One panel per model: paired vs random-pair latent distances of the test pairs. With
    ``normalise`` both are divided by the model's random-pair median (scale-free comparison)."""
    from ..plots import plt, save_figure

    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.0), squeeze=False, sharey=False)
    for ax, (name, (paired, random)) in zip(axes[0], panels.items()):
        scale = float(np.median(random)) if normalise and len(random) else 1.0
        top = max(np.percentile(random / scale, 99.5), np.max(paired / scale)) if len(random) else np.max(paired)
        bins = np.linspace(0, top, 40)
        ax.hist(random / scale, bins=bins, density=True, alpha=0.5, label="random pairs")
        ax.hist(paired / scale, bins=bins, density=True, alpha=0.6, label="same galaxy")
        ax.axvline(np.median(paired) / scale, color="C1", lw=1)
        ax.set_title(f"{name}: median paired / random {np.median(paired) / np.median(random):.3f}", fontsize=8)
        ax.set_xlabel("latent distance / random-pair median" if normalise else "latent distance (mu)")
    axes[0][0].set_ylabel("density")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)
