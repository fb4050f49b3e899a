"""The mock survey's examples figure (examples_by_class.png) and its RGB composite.

READS   the cutouts of a built mock (``out_dir``) and its truth table
WRITES  the PNG given as ``path``
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..imageio import asinh_stretch, read_raw
from .surveys import DECALS, DEFECT_KINDS, MORPH_TYPES, SURVEYS


# Display-only band weights (between equal weights and the Legacy Survey viewer's g, r, z scales
# 6.0, 3.4, 2.2), so old populations look yellow-red and star formation blue; the network input is not weighted.
DISPLAY_BAND_WEIGHTS = (1.4, 1.0, 0.75)


def rgb_composite(flux: np.ndarray) -> np.ndarray:
    """(3, H, W) g, r, z nanomaggies -> (H, W, 3) display RGB with z->R, r->G, g->B (asinh stretch)."""
    stretched = asinh_stretch(np.asarray(flux) * np.array(DISPLAY_BAND_WEIGHTS, dtype=np.float32)[:, None, None])
    return np.stack([stretched[2], stretched[1], stretched[0]], axis=-1)


def save_examples_png(out_dir, truth: pd.DataFrame, path, per_class: int = 4) -> None:
    """A mosaic: one row per morph_type plus a row of defective images; DECaLS | BASS+MzLS pairs.

    Tiles are drawn north up, east left, as in the Legacy Survey viewer.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out_dir = Path(out_dir)
    rows = []
    artefact_columns = [c for c in truth.columns if c.startswith("artefact_bass_")]
    north_artefact = truth[artefact_columns].any(axis=1) if artefact_columns else pd.Series(False, index=truth.index)
    clean = truth[(truth["defect_decals"] == "") & (truth["defect_bass"] == "") & ~north_artefact]
    for morph in MORPH_TYPES:
        group = clean[clean["morph_type"] == morph].sort_values("in_bass_footprint", ascending=False, kind="stable")
        rows.append((morph, group.head(per_class)))
    # Defects: one of each kind where possible, preferring damage in the BASS+MzLS image.
    picked = []
    for kind in DEFECT_KINDS:
        for column in ("defect_bass", "defect_decals"):
            hits = truth.index[(truth[column] == kind) & ~truth.index.isin(picked)]
            if len(hits):
                picked.append(hits[0])
                break
    rest = truth.index[((truth["defect_decals"] != "") | (truth["defect_bass"] != "")) & ~truth.index.isin(picked)]
    rows.append(("defects", truth.loc[(picked + list(rest))[:per_class]]))
    if artefact_columns:      # north-only artefacts: one of each kind where possible
        picked = []
        for column in artefact_columns:
            hits = truth.index[truth[column].astype(bool) & ~truth.index.isin(picked)]
            if len(hits):
                picked.append(hits[0])
        if picked:
            rows.append(("north artefacts", truth.loc[picked[:per_class]]))

    size = read_raw(out_dir / DECALS.image_dir / f"{truth['decals_iauname'].iloc[0]}.fits").shape[1]
    gap, pair_gap, header = max(1, size // 32), max(3, size // 8), max(6, size // 6)
    row_height = size + header
    column_x = [k * (2 * size + gap + pair_gap) + s * (size + gap) for k in range(per_class) for s in range(2)]
    mosaic = np.ones((len(rows) * row_height, column_x[-1] + size, 3), dtype=np.float32)
    captions = []                                   # (x, y, text) in mosaic pixels
    for r, (label, group) in enumerate(rows):
        top = r * row_height + header
        for k in range(min(per_class, len(group))):
            row = group.iloc[k]
            for s, survey in enumerate(SURVEYS):
                x = column_x[2 * k + s]
                name = row["decals_iauname"] if survey is DECALS else row["bass_iauname"]
                if name:
                    tile = np.flipud(rgb_composite(read_raw(out_dir / survey.image_dir / f"{name}.fits")))
                else:
                    tile = np.full((size, size, 3), 0.85, dtype=np.float32)
                    captions.append((x + size / 2, top + size / 2, "outside\nBASS"))
                mosaic[top:top + size, x:x + size] = tile
                if label == "defects":
                    caption = row[f"defect_{survey.key}"] or "(no defect)"
                elif label == "north artefacts":
                    caption = "" if survey is DECALS else ", ".join(
                        c.replace("artefact_bass_", "").replace("_", " ") for c in artefact_columns if row[c])
                else:
                    caption = survey.name if r == 0 else ""
                if caption:
                    captions.append((x + size / 2, top - 1, caption))

    scale = 1.3 / size                              # inches per mosaic pixel: a tile is 1.3 inch wide
    left, pad, top = 0.75, 0.05, 0.3                # inches: row labels, border, title
    width, height = mosaic.shape[1] * scale, mosaic.shape[0] * scale
    fig = Figure(figsize=(left + width + pad, height + top + pad))
    FigureCanvasAgg(fig)
    fig_width, fig_height = fig.get_figwidth(), fig.get_figheight()
    ax = fig.add_axes((left / fig_width, pad / fig_height, width / fig_width, height / fig_height))
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_axis_off()
    for x, y, text in captions:
        ax.text(x, y, text, ha="center", va="bottom" if "\n" not in text else "center", fontsize=6)
    for r, (label, _) in enumerate(rows):
        ax.text(-size * 0.05, r * row_height + header + size / 2, label.replace("_", "\n"), ha="right", va="center",
                fontsize=7)
    fig.suptitle("Mock survey examples: DECaLS | BASS+MzLS pairs (z, r, g -> R, G, B; asinh stretch)", fontsize=8,
                 y=1 - 0.05 / fig.get_figheight())
    fig.savefig(path, dpi=max(100, int(np.ceil(1 / scale))))


def save_gap_examples_png(mock_dirs: dict[float, str | Path], path, n_galaxies: int = 8,
                          prefer_artefacts: bool = True) -> Path:
    """DECaLS next to the north image of the same galaxies at each gap: one column per galaxy,
    rows DECaLS, north at gap g1, g2, ... (mocks of one seed rendered at several gaps).

    Galaxies: the first in the north footprint, with artefact-carrying ones (at the largest gap)
    first when ``prefer_artefacts``; each column title names the artefacts of the largest gap.
    """
    from ..plots import save_image_grid
    from .surveys import NORTH_ARTEFACT_KINDS

    gaps = sorted(mock_dirs)
    truths = {g: pd.read_parquet(Path(mock_dirs[g]) / "truth.parquet") for g in gaps}
    last = truths[gaps[-1]]
    inside = last[last["in_bass_footprint"]].copy()
    flags = inside[[f"artefact_bass_{k}" for k in NORTH_ARTEFACT_KINDS]].to_numpy()
    inside["n_flags"] = flags.sum(axis=1)
    if prefer_artefacts:
        flagged = inside[inside["n_flags"] > 0].head(n_galaxies // 2)
        chosen = pd.concat([flagged, inside[inside["n_flags"] == 0].head(n_galaxies - len(flagged))])
    else:
        chosen = inside.head(n_galaxies)
    labels = []
    for _, row in chosen.iterrows():
        kinds = [k.replace("_", " ") for k in NORTH_ARTEFACT_KINDS if row[f"artefact_bass_{k}"]]
        labels.append(f"{row['morph_type'].replace('_', ' ')}\n{', '.join(kinds) or '-'}")

    def tile(folder, name):
        return np.clip(asinh_stretch(read_raw(Path(folder) / name)), 0.0, 1.0)

    rows = [[tile(Path(mock_dirs[gaps[0]]) / DECALS.image_dir, f"{n}.fits") for n in chosen["decals_iauname"]]]
    row_labels = ["DECaLS"]
    for g in gaps:
        names = truths[g].set_index("galaxy_id").loc[chosen["galaxy_id"], "bass_iauname"]
        rows.append([tile(Path(mock_dirs[g]) / SURVEYS[1].image_dir, f"{n}.fits") for n in names])
        row_labels.append(f"north, gap {g:g}")
    return save_image_grid(rows, path, row_labels=row_labels, col_labels=labels,
                           title="the same galaxies: DECaLS and the mock north at several gaps "
                                 "(z, r, g -> R, G, B; asinh; artefacts of the largest gap named)")
