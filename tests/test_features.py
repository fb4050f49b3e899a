"""Latent extraction (VAE_model/features.py): orientation-averaged encoding.

A tiny VAE with random weights is enough: the invariance is a property of the averaging, not of
training. The images are random uint8 cutouts, as the decode-once cache stores them.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from VAE_model.features import dihedral_views, encode_arrays
from VAE_model.models import VAE, VAEConfig


@pytest.fixture(scope="module")
def model_and_images():
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=4, image_size=64, pose="none")).eval()
    images = np.random.default_rng(0).integers(0, 256, size=(5, 3, 64, 64), dtype=np.uint8)
    return model, images


def test_dihedral_views_are_the_8_distinct_flips_and_quarter_turns():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    views = dihedral_views(x)
    assert len(views) == 8 and torch.equal(views[0], x)
    assert len({tuple(v.flatten().tolist()) for v in views}) == 8
    # the set of views is closed under the group: the views of a turned image are the same 8 images
    turned = {tuple(v.flatten().tolist()) for v in dihedral_views(torch.rot90(x, 1, dims=(-2, -1)).flip(-1))}
    assert turned == {tuple(v.flatten().tolist()) for v in views}


def test_orientation_averaged_mu_is_invariant_to_flips_and_quarter_turns(model_and_images):
    model, images = model_and_images
    mu, logvar = encode_arrays(model, images, "cpu", orientation_average=True)
    plain_mu, _ = encode_arrays(model, images, "cpu")
    for transformed in (np.rot90(images, 1, axes=(-2, -1)), np.rot90(images, 2, axes=(-2, -1)),
                        images[..., ::-1], np.rot90(images[..., ::-1], 3, axes=(-2, -1))):
        mu_t, logvar_t = encode_arrays(model, np.ascontiguousarray(transformed), "cpu", orientation_average=True)
        np.testing.assert_allclose(mu_t, mu, atol=1e-5)
        np.testing.assert_allclose(logvar_t, logvar, atol=1e-5)
        # without averaging the same transform does move mu (so the test above can fail)
        plain_t, _ = encode_arrays(model, np.ascontiguousarray(transformed), "cpu")
        assert np.abs(plain_t - plain_mu).max() > 1e-3


def test_orientation_averaged_mu_is_the_mean_of_plain_mu_over_the_8_views(model_and_images):
    model, images = model_and_images
    mu, logvar = encode_arrays(model, images, "cpu", orientation_average=True)
    per_view = [encode_arrays(model, v.numpy(), "cpu") for v in dihedral_views(torch.from_numpy(images))]
    np.testing.assert_allclose(mu, np.mean([m for m, _ in per_view], axis=0), atol=1e-5)
    # logvar: log of the mean variance over the views (documented choice)
    np.testing.assert_allclose(logvar, np.log(np.mean([np.exp(lv) for _, lv in per_view], axis=0)), atol=1e-5)


def test_default_encoding_is_one_view_and_batching_does_not_matter(model_and_images):
    model, images = model_and_images
    mu, logvar = encode_arrays(model, images, "cpu")
    with torch.no_grad():
        expected_mu, expected_logvar = model.encode(torch.from_numpy(images).float() / 255.0)
    np.testing.assert_allclose(mu, expected_mu.numpy(), atol=1e-5)
    np.testing.assert_allclose(logvar, expected_logvar.numpy(), atol=1e-5)
    averaged, _ = encode_arrays(model, images, "cpu", orientation_average=True, batch_size=2)
    np.testing.assert_allclose(averaged, encode_arrays(model, images, "cpu", orientation_average=True)[0], atol=1e-5)
