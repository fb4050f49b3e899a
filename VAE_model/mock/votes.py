"""Galaxy Zoo DECaLS style volunteer votes for one mock survey image (Walmsley et al. 2022 schema).

READS / WRITES nothing (returns one catalog row as a dict).
"""
from __future__ import annotations

import numpy as np

from ..catalog import GZ_QUESTIONS, count_column, fraction_column, total_votes_column
from .surveys import REFERENCE_IMAGE_SIZE


def _peaked(n_answers: int, true_index: int, p_true: float, spill: float = 0.7) -> np.ndarray:
    """Probability vector: p_true on the true answer, `spill` of the rest on its neighbours."""
    p = np.full(n_answers, 0.0)
    neighbours = [i for i in (true_index - 1, true_index + 1) if 0 <= i < n_answers]
    others = [i for i in range(n_answers) if i != true_index and i not in neighbours]
    rest = 1.0 - p_true
    p[true_index] = p_true
    if not others:
        spill = 1.0
    for i in neighbours:
        p[i] = rest * spill / len(neighbours)
    for i in others:
        p[i] = rest * (1 - spill) / len(others)
    return p


def vote_probabilities(p: dict, psf_fwhm, defect: str, image_size: int, rng) -> dict[str, np.ndarray]:
    """The probability that a volunteer picks each answer, per question, for one survey image.

    Volunteers see the image, not the truth, so the probabilities follow what is visible:
      * clarity falls with r_half / PSF FWHM and with magnitude: clear cases put ~0.8-0.9 on the
        true answer, small or faint ones less, and BASS+MzLS (worse seeing) less than DECaLS;
      * the PSF makes small galaxies look rounder (how-rounded uses the apparent axis ratio);
      * faint, tightly wound or inclined arms get 'smooth' and 'no arms' votes;
      * volunteer habits: some smooth ellipticals (more so cigar-shaped ones) are read as
        lenticular disks, clumpy irregulars as mergers or spirals now and then, and damaged
        cutouts get 'artifact' votes only sometimes.
    ``rng`` draws these per-image perceptions, so the two surveys' votes differ even for clear cases.
    """
    morph = p["morph_type"]
    fwhm = float(np.mean(psf_fwhm))
    mag_rel = p["mag_r"] + 5 * np.log10(image_size / REFERENCE_IMAGE_SIZE)      # 15-18 at any stamp size
    clarity = (0.35 + 0.65 * np.clip((p["r_half_arcsec"] / fwhm - 0.8) / 1.6, 0, 1)) \
        * (1 - 0.25 * np.clip((mag_rel - 15) / 3, 0, 1))
    c = float(np.clip(0.55 + 0.37 * clarity + rng.normal(0, 0.04), 0.45, 0.93))
    smooth = morph.startswith("smooth")
    spiral = morph in ("spiral", "barred_spiral")
    read_as_disk = smooth and rng.uniform() < (0.12 if morph == "smooth_cigar" else 0.06)
    looks_merging = morph == "irregular" and rng.uniform() < 0.2
    arm_visibility = 0.0
    if spiral:
        arm_visibility = clarity * p["arm_strength"] * (0.75 if p["winding"] == "tight" else 1.0) \
            * (1 - 0.4 * max(0.0, (p["inclination_deg"] - 45) / 20))
    arms_seen = 0.3 + 0.7 * min(arm_visibility / 0.7, 1.0)
    probs: dict[str, np.ndarray] = {}

    if smooth:
        featured = 0.65 if read_as_disk else 1 - c
    elif morph == "edge_on":
        featured = c
    elif spiral:
        featured = min(arms_seen, 0.93)
    elif morph == "irregular":
        featured = 0.55 + 0.35 * clarity
    else:  # merger: a pair of ellipticals is often called smooth
        featured = 0.5 + 0.35 * clarity if p["merger_primary"] == "disk" else 0.4 + 0.25 * clarity
    sof = np.array([1 - featured, featured]) * 0.99
    artifact = draw_artifact_share(rng, defect) if defect else 0.01
    probs["smooth-or-featured"] = np.append(sof / sof.sum() * (1 - artifact), artifact)

    if morph == "edge_on":
        edge_yes = c
    elif read_as_disk:
        edge_yes = 0.75 if morph == "smooth_cigar" else 0.1
    elif morph == "smooth_cigar":
        edge_yes = 0.45
    elif spiral:
        edge_yes = 0.04 + 0.35 * max(0.0, (p["inclination_deg"] - 45) / 20)
    else:
        edge_yes = 0.06
    probs["disk-edge-on"] = np.array([edge_yes, 1 - edge_yes])

    arms_yes = {"merger": 0.3, "irregular": 0.45 if rng.uniform() < 0.2 else 0.2, "edge_on": 0.3}.get(morph, 0.1)
    if spiral:
        arms_yes = min(arms_seen, 0.95)
    probs["has-spiral-arms"] = np.array([arms_yes, 1 - arms_yes])

    if p["bar"] == "strong":
        probs["bar"] = np.array([c, 0.75 * (1 - c), 0.25 * (1 - c)])
    elif p["bar"] == "weak":                          # weak bars are the least agreed-on answer
        weak = c - 0.2
        probs["bar"] = np.array([0.3 * (1 - weak), weak, 0.7 * (1 - weak)])
    else:
        no = c if spiral else 0.85
        probs["bar"] = np.array([0.2 * (1 - no), 0.8 * (1 - no), no])

    bulge_index = {"none": 4, "small": 3, "moderate": 2, "large": 1}
    if p["bulge_size"] in bulge_index:
        index = 0 if p["bulge_size"] == "large" and p["bulge_fraction"] > 0.5 else bulge_index[p["bulge_size"]]
        probs["bulge-size"] = _peaked(5, index, c - 0.12)
    else:
        probs["bulge-size"] = _peaked(5, 1 if smooth else 2, 0.5)

    # Apparent axis ratio: the PSF adds in quadrature to both axes (s ~ a third of the FWHM).
    q, r_half, s = p["axis_ratio"], p["r_half_arcsec"], fwhm / 3
    q_seen = np.sqrt((q ** 2 * r_half ** 2 + s ** 2) / (r_half ** 2 + s ** 2))
    p_round, p_cigar = 1 / (1 + np.exp(-(q_seen - 0.75) / 0.04)), 1 / (1 + np.exp(-(0.45 - q_seen) / 0.04))
    rounded = np.array([p_round, max(1 - p_round - p_cigar, 0.0), p_cigar])
    probs["how-rounded"] = 0.88 * rounded / rounded.sum() + 0.04

    if p["winding"]:
        probs["spiral-winding"] = _peaked(3, ("tight", "medium", "loose").index(p["winding"]), c - 0.12)
    else:
        probs["spiral-winding"] = np.array([0.3, 0.4, 0.3])

    stage = p["merger_stage"]
    if stage == "merger":
        probs["merging"] = _peaked(4, 3, c - 0.05)
    elif stage == "major_disturbance":
        probs["merging"] = _peaked(4, 2, c - 0.15)
    elif looks_merging:
        probs["merging"] = np.array([0.25, 0.15, 0.15, 0.45])
    elif morph == "irregular":
        probs["merging"] = np.array([0.55, 0.25, 0.15, 0.05])
    elif p["has_companion"]:
        probs["merging"] = np.array([0.6, 0.25, 0.08, 0.07])
    else:
        probs["merging"] = np.array([c + 0.03, 0.85 * (0.97 - c), 0.1 * (0.97 - c), 0.05 * (0.97 - c)])
    return {question: np.clip(v, 1e-3, None) / np.clip(v, 1e-3, None).sum() for question, v in probs.items()}


def draw_artifact_share(rng, defect: str) -> float:
    """Share of 'artifact' votes a damaged cutout gets (0 for a clean one)."""
    if not defect:
        return 0.0
    if defect == "missing_band":
        return float(rng.uniform(0.45, 0.85))
    # Volunteers flag a trail or a bright star only sometimes; a galaxy behind it still gets votes.
    return float(rng.uniform(0.35, 0.8) if rng.uniform() < 0.6 else rng.uniform(0.03, 0.2))


def draw_votes(rng, probs: dict[str, np.ndarray], concentration: float = 25.0) -> dict:
    """Volunteer votes down the decision tree: counts ~ Multinomial(total, Dirichlet(p)).

    Each question is asked only of the volunteers whose earlier answers lead to it (Walmsley
    et al. 2022, Fig. 4), so e.g. disk-edge-on total-votes = featured-or-disk count.
    Fractions are NaN where a question received no votes, as in the real catalog.
    """
    counts: dict[str, np.ndarray] = {}

    def ask(question, total):
        p = rng.dirichlet(probs[question] * concentration)
        counts[question] = rng.multinomial(int(total), p) if total > 0 else np.zeros(len(p), dtype=np.int64)
        return counts[question]

    smooth, featured, _ = ask("smooth-or-featured", rng.integers(30, 46))
    ask("how-rounded", smooth)
    _, not_edge_on = ask("disk-edge-on", featured)
    spiral_yes, _ = ask("has-spiral-arms", not_edge_on)
    ask("bar", not_edge_on)
    ask("bulge-size", not_edge_on)
    ask("spiral-winding", spiral_yes)
    ask("merging", smooth + featured)

    row = {}
    for question, answers in GZ_QUESTIONS.items():
        total = int(counts[question].sum())
        for answer, count in zip(answers, counts[question]):
            row[count_column(question, answer)] = int(count)
        for answer, count in zip(answers, counts[question]):
            row[fraction_column(question, answer)] = count / total if total else np.nan
        row[total_votes_column(question)] = total
    return row
