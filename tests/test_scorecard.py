"""The feature scorecard's metrics on hand-made features, the nuisance transforms, the consistency term
and the contrastive loss."""
import math

import numpy as np
import pytest
import torch

from VAE_model import feature_sets, scorecard
from VAE_model.contrastive import ContrastiveEncoder, nt_xent_loss, train_contrastive
from VAE_model.models import VAEConfig
from VAE_model.nuisance import NuisanceSpec, gaussian_blur, random_nuisance, turn_and_shift
from VAE_model.training import consistency_loss


def clusters(n_per=30, dim=4, separation=20.0, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(["a", "b", "c"], n_per)
    centres = {"a": 0.0, "b": separation, "c": -separation}
    features = rng.normal(size=(len(labels), dim)) + np.array([centres[l] for l in labels])[:, None]
    return features, labels


def test_precision_at_10_is_1_for_separated_classes_and_chance_for_noise():
    features, labels = clusters()
    assert scorecard.knn_precision(features, labels).mean() == 1.0
    noise = np.random.default_rng(1).normal(size=features.shape)
    assert scorecard.knn_precision(noise, labels).mean() == pytest.approx(29 / 89, abs=0.1)


def test_precision_leaves_the_galaxy_itself_out_even_for_duplicates():
    features = np.repeat(np.arange(12.0)[:, None], 2, axis=0)      # every galaxy twice
    labels = np.arange(24) % 2                                      # the two copies differ in label
    assert scorecard.knn_precision(features, labels, k=1).mean() == 0.0


def test_probes_score_separable_and_random_labels():
    features, labels = clusters(n_per=40)
    probes = scorecard.probe_accuracies(features, labels)
    assert probes["linear"][0] == 1.0 and probes["forest"][0] == 1.0 and probes["forest"][3] == 120
    shuffled = np.random.default_rng(0).permutation(labels)
    assert scorecard.probe_accuracies(features, shuffled)["forest"][0] < 0.55


def test_invariance_ratio_is_0_for_identical_and_about_1_for_unrelated_features():
    features = np.random.default_rng(0).normal(size=(400, 8))
    assert scorecard.invariance_ratio(features, features.copy())[0] == 0.0
    ratio, low, high = scorecard.invariance_ratio(features, np.random.default_rng(1).permutation(features))
    assert 0.9 < ratio < 1.1 and low < ratio < high
    half, _, _ = scorecard.invariance_ratio(features, features + 0.5 * np.random.default_rng(2).normal(size=features.shape))
    assert 0.2 < half < 0.5   # |0.5 noise| over |difference of two unit Gaussians|: 0.5 / sqrt(2)


def test_retrieval_and_wilson_interval():
    features = np.random.default_rng(0).normal(size=(50, 6))
    assert scorecard.retrieval_top1(features, features + 1e-3)[0] == 1.0
    assert scorecard.retrieval_top1(features, np.random.default_rng(1).normal(size=(50, 6)))[0] < 0.2
    low, high = scorecard.wilson_interval(0.5, 100)
    assert (round(low, 3), round(high, 3)) == (0.404, 0.596)   # the textbook value


def test_transforms_turn_the_right_way_and_do_nothing_when_off():
    images = torch.rand(3, 3, 16, 16)
    quarter = turn_and_shift(images, torch.full((3,), math.pi / 2), torch.zeros(3, dtype=torch.bool), torch.zeros(3, 2))
    assert torch.allclose(quarter, torch.rot90(images, 1, dims=(-2, -1)), atol=1e-5)
    mirrored = turn_and_shift(images, torch.zeros(3), torch.ones(3, dtype=torch.bool), torch.zeros(3, 2))
    assert torch.allclose(mirrored, images.flip(-1), atol=1e-6)
    off = NuisanceSpec(rotate=False, max_shift_px=0.0, seeing_scale=0.0, noise_scale=0.0, band_mag_sd=0.0)
    assert torch.allclose(random_nuisance(images, off, torch.Generator().manual_seed(0)), images, atol=1e-5)
    point = torch.zeros(1, 3, 21, 21)
    point[..., 10, 10] = 1.0
    blurred = gaussian_blur(point, torch.tensor([[1.0, 2.0, 0.5]]))
    assert torch.allclose(blurred.sum((-2, -1)), torch.ones(1, 3), atol=1e-5)      # flux kept
    assert blurred[0, 1, 10, 10] < blurred[0, 0, 10, 10] < blurred[0, 2, 10, 10]     # wider sigma, lower peak


def test_scored_transforms_are_seeded_and_the_same_for_every_feature_set():
    images = torch.rand(4, 3, 16, 16)
    for name in feature_sets.TRANSFORMS:
        assert torch.equal(feature_sets.transformed(images, name, seed=3), feature_sets.transformed(images, name, seed=3))


def test_consistency_term_is_0_for_invariant_latents_and_cannot_be_won_by_collapse():
    mu = torch.randn(64, 8)
    assert consistency_loss(mu, mu.clone()).item() == 0.0
    moved = mu + 0.3 * torch.randn(64, 8)
    assert consistency_loss(0.01 * mu, 0.01 * moved).item() == pytest.approx(consistency_loss(mu, moved).item(), rel=1e-4)
    assert consistency_loss(mu, torch.randn(64, 8)).item() == pytest.approx(2.0, abs=0.4)


def test_contrastive_loss_prefers_matching_views_and_training_runs():
    z = torch.randn(16, 8)
    assert nt_xent_loss(z, z + 0.01 * torch.randn(16, 8)) < nt_xent_loss(z, torch.randn(16, 8))
    cache = (np.random.default_rng(0).random((12, 3, 64, 64)) * 255).astype(np.uint8)
    model, history = train_contrastive(cache, np.arange(12), VAEConfig(latent_dim=4, image_size=64), "cpu",
                                       epochs=1, batch_size=6)
    assert isinstance(model, ContrastiveEncoder) and np.isfinite(history[0]["loss"])
    assert feature_sets.contrastive_features(model)(torch.rand(3, 3, 64, 64)).shape == (3, 4)
