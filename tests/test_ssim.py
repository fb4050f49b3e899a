"""SSIM uses the Wang et al. (2004) settings and agrees with scikit-image run with those settings."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from VAE_model.metrics import ssim_per_image, ssim_torch


def skimage_wang2004(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=1.0, channel_axis=0)


@pytest.mark.parametrize("size", [16, 64])
def test_ssim_matches_skimage_with_the_papers_settings(size):
    rng = np.random.default_rng(size)
    y, x = np.mgrid[:size, :size] - size / 2
    galaxy = np.exp(-0.5 * (x ** 2 + (y / 0.6) ** 2) / (0.15 * size) ** 2)
    originals = np.clip(galaxy[None, None] * rng.uniform(0.5, 1, (5, 3, 1, 1))
                        + rng.normal(0, 0.03, (5, 3, size, size)), 0, 1).astype(np.float32)
    noisy = np.clip(originals + rng.normal(0, rng.uniform(0.01, 0.2, (5, 1, 1, 1)), originals.shape), 0, 1)
    blurred = (originals + np.roll(originals, 1, -1) + np.roll(originals, 1, -2)) / 3
    for other in (noisy.astype(np.float32), blurred.astype(np.float32)):
        ours = ssim_per_image(originals, other, batch_size=2)           # batches of 2: batching does not matter
        reference = np.array([skimage_wang2004(a, b) for a, b in zip(originals, other)])
        assert np.max(np.abs(ours - reference)) < 1e-4, (ours, reference)
        assert np.all(ours < 1)
    # skimage's defaults (uniform 7x7 window, sample covariance) give other numbers: the settings matter
    from skimage.metrics import structural_similarity
    default = structural_similarity(originals[0], noisy[0].astype(np.float32), data_range=1.0, channel_axis=0)
    assert abs(default - ssim_per_image(originals[:1], noisy[:1].astype(np.float32))[0]) > 1e-4


def test_ssim_of_identical_images_is_one_and_uint8_is_scaled():
    images = np.random.default_rng(1).uniform(0, 1, (2, 3, 32, 32)).astype(np.float32)
    assert np.allclose(ssim_torch(torch.from_numpy(images), torch.from_numpy(images)).numpy(), 1.0)
    as_uint8 = np.round(images * 255).astype(np.uint8)
    assert np.allclose(ssim_per_image(as_uint8, as_uint8.astype(np.float32) / 255), 1.0)


def test_ssim_rejects_images_smaller_than_the_window():
    with pytest.raises(ValueError, match="at least 11 px"):
        ssim_torch(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))


def test_reconstruction_mse_within_the_inscribed_circle_leaves_the_corners_out():
    import torch

    from VAE_model.metrics import reconstruction_metrics

    side = 16
    images = np.random.default_rng(0).integers(0, 255, (3, 3, side, side)).astype(np.uint8)
    rows, columns = np.mgrid[:side, :side]
    corners = np.hypot(rows - (side - 1) / 2, columns - (side - 1) / 2) >= side / 2

    class CornersWrong(torch.nn.Module):
        """Reconstructs every pixel exactly except the corners outside the inscribed circle (set to 0)."""
        def forward(self, x):
            return x * torch.from_numpy(~corners).to(x.dtype), None, None

    result = reconstruction_metrics(CornersWrong(), images, np.arange(3), torch.device("cpu"), ssim=False)
    assert np.all(result["mse_per_pixel"] > 0)
    np.testing.assert_allclose(result["mse_per_pixel_inner"], 0.0, atol=1e-12)
    expected = ((images / 255.0) ** 2 * corners).reshape(3, -1).mean(1)
    np.testing.assert_allclose(result["mse_per_pixel"], expected, rtol=1e-5)
