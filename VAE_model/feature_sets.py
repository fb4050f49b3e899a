"""The feature sets the scorecard compares, each a function of stretched images, and the scoring of
all of them on the same galaxies, folds and transformed copies (scorecard.py holds the metrics).

A feature set maps float images (N, 3, S, S) in [0, 1] to features (N, D):
  vae            the VAE's ``mu`` (the content latents of a pose-separated VAE)
  pixel_pca      PCA of the pixels (block-averaged to at most 32 px a side), as many components as
                 the latent size, fitted on the scored galaxies
  aligned_pca    the same PCA of the pixels in the canonical pose of pose.py: what the moment
                 alignment alone buys, so that what a pose-separated VAE adds beyond it is visible
  morphology     concentration, asymmetry, smoothness, Gini, M20, ellipticity of the r band
                 (VAE_model.morphology; flux from the stretch undone)
  contrastive    the SimCLR encoder's features (contrastive.py)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from . import scorecard
from .config import PCA_MAX_PX
from .imageio import resize
from .nuisance import NuisanceSpec, random_nuisance, turn_and_shift
from .pose import moment_pose, to_canonical

ENCODE_BATCH = 256
SHIFT_PX = 0.5
TRANSFORMS = ("quarter_turn", "any_angle", "mirror", "shift", "survey")

Extractor = Callable[[torch.Tensor], np.ndarray]


def as_float(images) -> torch.Tensor:
    """uint8 (cache rows) or float images -> float32 tensor in [0, 1]."""
    tensor = torch.from_numpy(np.array(images))   # a copy: the cache is a read-only memory map
    return tensor.float().div(255.0) if tensor.dtype == torch.uint8 else tensor.float()


def batched(function, images: torch.Tensor, batch_size: int = ENCODE_BATCH) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate([np.asarray(function(images[i:i + batch_size]), np.float32)
                               for i in range(0, len(images), batch_size)])


def vae_features(model) -> Extractor:
    model.eval()
    return lambda images: batched(lambda x: model.encode(x)[0].float().cpu().numpy(), images)


def contrastive_features(model) -> Extractor:
    model.eval()
    return lambda images: batched(lambda x: model.features(x).float().cpu().numpy(), images)


def block_averaged_pixels(images: np.ndarray, max_px: int = PCA_MAX_PX) -> np.ndarray:
    """(N, 3 * s * s) float32 pixels of float images (N, 3, S, S), block-averaged to the largest s <= max_px
    that divides S (whole blocks: imageio.resize averages them, flux per area kept). The pixel-PCA
    baseline of decals_5 and of the scorecard."""
    images = np.asarray(images, dtype=np.float32)
    size = images.shape[-1]
    factor = next(f for f in range(max(1, math.ceil(size / max_px)), size + 1) if size % f == 0)
    return np.stack([resize(image, size // factor).ravel() for image in images]).reshape(len(images), -1)


def _pixels(images: torch.Tensor) -> np.ndarray:
    return block_averaged_pixels(images.numpy())


def _aligned(images: torch.Tensor) -> torch.Tensor:
    return torch.cat([to_canonical(chunk, moment_pose(chunk)) for chunk in images.split(ENCODE_BATCH)])


def pca_features(fit_images: torch.Tensor, n_components: int, aligned: bool = False, seed: int = 0) -> Extractor:
    """PCA of the (aligned) pixels, fitted on ``fit_images``."""
    from sklearn.decomposition import PCA

    prepare = (lambda x: _pixels(_aligned(x))) if aligned else _pixels
    pixels = prepare(fit_images)
    pca = PCA(n_components=min(n_components, *pixels.shape), random_state=seed).fit(pixels)
    return lambda images: pca.transform(prepare(images)).astype(np.float32)


def morphology_features() -> Extractor:
    from .imageio import inverse_asinh_stretch
    from .morphology import morphology_features as measure

    def extract(images: torch.Tensor) -> np.ndarray:
        features, _ = measure(inverse_asinh_stretch(images[:, 1].numpy()))
        return features.astype(np.float32)
    return extract


def transformed(images: torch.Tensor, transform: str, seed: int = 0,
                spec: NuisanceSpec = NuisanceSpec()) -> torch.Tensor:
    """The images under one of TRANSFORMS (seeded; the same copies for every feature set)."""
    generator = torch.Generator().manual_seed(seed)
    n = len(images)
    if transform == "quarter_turn":
        return torch.rot90(images, 1, dims=(-2, -1))
    if transform == "mirror":
        return images.flip(-1)
    if transform == "any_angle":
        angle = torch.rand(n, generator=generator) * 2 * math.pi
        return turn_and_shift(images, angle, torch.zeros(n, dtype=torch.bool), torch.zeros(n, 2))
    if transform == "shift":
        return turn_and_shift(images, torch.zeros(n), torch.zeros(n, dtype=torch.bool), torch.full((n, 2), SHIFT_PX))
    if transform == "survey":
        survey_only = NuisanceSpec(pixel_scale_arcsec=spec.pixel_scale_arcsec, rotate=False, max_shift_px=0.0)
        return torch.cat([random_nuisance(chunk, survey_only, generator) for chunk in images.split(ENCODE_BATCH)])
    raise ValueError(f"unknown transform {transform!r}; choose from {', '.join(TRANSFORMS)}")


@dataclass
class Pairs:
    """One galaxy imaged by both surveys per row; ``test`` rows score, the others train the forest."""
    decals: torch.Tensor
    bass: torch.Tensor
    labels: np.ndarray | None
    test: np.ndarray


def labelled(labels) -> np.ndarray:
    """Which galaxies carry a label: not None, NaN or ''."""
    return np.array([value is not None and value == value and value != "" for value in labels], dtype=bool)


def score_sets(extractors: dict[str, Extractor], images: torch.Tensor, labelings: dict[str, np.ndarray],
               invariance_rows: np.ndarray, pairs: Pairs | None = None, seed: int = 0,
               spec: NuisanceSpec = NuisanceSpec(), progress: bool = False) -> list[dict]:
    """Long-format rows (feature_set, metric, label, value, low, high, n) for every feature set.

    ``labelings``: name -> labels of ``images`` (None/'' rows are left out of that labelling);
    ``invariance_rows``: the galaxies whose transformed copies give the ratios.
    """
    from tqdm import tqdm

    copies = {name: transformed(images[invariance_rows], name, seed, spec) for name in TRANSFORMS}
    rows = []
    for set_name, extract in tqdm(extractors.items(), desc="feature sets", disable=not progress, leave=False):
        features = extract(images)

        def add(metric, label, value, low, high, n):
            rows.append({"feature_set": set_name, "metric": metric, "label": label, "value": value,
                         "low": low, "high": high, "n": n})

        for label_name, labels in labelings.items():
            labels = np.asarray(labels, dtype=object)
            known = labelled(labels)
            scores = scorecard.label_scores(features[known], labels[known].astype(str), seed=seed)
            for metric, values in (scores or {}).items():
                add(metric, label_name, *values)
        base = features[invariance_rows]
        for name, copy in copies.items():
            add(f"ratio_{name}", "", *scorecard.invariance_ratio(base, extract(copy), seed), len(invariance_rows))
        if pairs is not None:
            decals, bass = extract(pairs.decals), extract(pairs.bass)
            add("retrieval_top1", "", *scorecard.retrieval_top1(decals[pairs.test], bass[pairs.test]), len(pairs.test))
            if pairs.labels is not None:
                train = np.setdiff1d(np.arange(len(decals)), pairs.test)
                forest = scorecard.cross_survey_forest(decals[train], pairs.labels[train], decals[pairs.test],
                                                       bass[pairs.test], pairs.labels[pairs.test], seed)
                for name, values in forest.items():
                    add(f"forest_{name}", "pairs", *values)
    return rows
