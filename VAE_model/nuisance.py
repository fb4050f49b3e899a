"""Nuisance transforms: the same galaxy as another exposure, survey or orientation would show it.

A morphology feature must not change when only these change, so the consistency term of training
(``TrainSettings.consistency``) and the contrastive encoder (contrastive.py) both see each galaxy
twice, once through ``random_nuisance``, and the feature scorecard (scorecard.py) measures how far
the features move under them. Per image, drawn from a seeded generator:

  orientation  a rotation by any angle and a mirror with probability 1/2 (the position angle and the
               handedness on the sky carry no morphology);
  centring     a shift of up to ``max_shift_px`` pixels in x and y (cutout centring, astrometry);
  seeing       a Gaussian blur per band of FWHM up to the extra width that takes the DECaLS median PSF
               to the BASS+MzLS one, sqrt(FWHM_north^2 - FWHM_DECaLS^2) (0.95", 0.79", 0" in g, r, z
               from mock/surveys.py: DECaLS 1.29/1.18/1.11", BASS/MzLS 1.60/1.42/1.04"), times
               ``seeing_scale`` (so the transform also spans DECaLS' own seeing scatter);
  depth        Gaussian noise per band up to ``noise_scale`` x the DECaLS sky noise per pixel
               (mock/surveys.py ``DECALS_NOISE_SIGMA_NMGY``), scaled to the images' pixel size
               (binned pixels: sigma x native / current pixel scale);
  calibration  a flux scale per band of N(0, ``band_mag_sd``) magnitudes (the north's colour terms
               and calibration scatter are a few hundredths of a magnitude; mock/surveys.py).
Blur, noise and flux scale act on the flux (the stretch is undone with ``imageio``'s constants and
applied again), so they are physical; the geometry acts on the stretched image (grid_sample,
bilinear, 0 = sky outside).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .imageio import ASINH_MAX_NMGY, ASINH_SOFTENING_NMGY, PIXEL_SCALE_ARCSEC
from .mock.surveys import BASS, DECALS, DECALS_NOISE_SIGMA_NMGY

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
NORTH_EXTRA_FWHM_ARCSEC = tuple(math.sqrt(max(n * n - s * s, 0.0)) for n, s in
                                zip(BASS.psf_fwhm_median_arcsec, DECALS.psf_fwhm_median_arcsec))
_STRETCH_SCALE = math.asinh(ASINH_MAX_NMGY / ASINH_SOFTENING_NMGY)


@dataclass(frozen=True)
class NuisanceSpec:
    pixel_scale_arcsec: float = PIXEL_SCALE_ARCSEC   # of the images the transforms act on
    rotate: bool = True
    max_shift_px: float = 1.0
    seeing_scale: float = 1.0
    noise_scale: float = 1.0
    band_mag_sd: float = 0.05

    @classmethod
    def for_image_size(cls, image_size: int, native_size: int | None = None, **changes) -> "NuisanceSpec":
        """The spec for cutouts of ``native_size`` native 0.262" pixels resized to ``image_size``."""
        scale = PIXEL_SCALE_ARCSEC * (native_size / image_size if native_size else 1.0)
        return cls(pixel_scale_arcsec=scale, **changes)


def stretch(flux: torch.Tensor) -> torch.Tensor:
    """imageio.asinh_stretch in torch."""
    return (torch.asinh(flux / ASINH_SOFTENING_NMGY) / _STRETCH_SCALE).clamp(0.0, 1.0)


def unstretch(stretched: torch.Tensor) -> torch.Tensor:
    """imageio.inverse_asinh_stretch in torch."""
    return ASINH_SOFTENING_NMGY * torch.sinh(stretched * _STRETCH_SCALE)


def gaussian_blur(images: torch.Tensor, sigma_px: torch.Tensor) -> torch.Tensor:
    """Blur each (image, band) plane by its own Gaussian sigma (pixels; sigma_px shape (N, C))."""
    n, c, h, w = images.shape
    radius = max(1, int(math.ceil(3 * float(sigma_px.max()))))
    offsets = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    sigma = sigma_px.to(images.device, images.dtype).clamp_min(1e-3).reshape(n * c, 1)
    kernel = torch.exp(-offsets[None] ** 2 / (2 * sigma ** 2))
    kernel = kernel / kernel.sum(1, keepdim=True)                       # (N*C, K)
    planes = images.reshape(1, n * c, h, w)
    planes = F.conv2d(F.pad(planes, (radius, radius, 0, 0)), kernel[:, None, None, :], groups=n * c)
    planes = F.conv2d(F.pad(planes, (0, 0, radius, radius)), kernel[:, None, :, None], groups=n * c)
    return planes.reshape(n, c, h, w)


def turn_and_shift(images: torch.Tensor, angle: torch.Tensor, mirror: torch.Tensor, shift_px: torch.Tensor) -> torch.Tensor:
    """Rotate each image by ``angle`` (radians) about its centre, mirror it (x -> -x) where ``mirror``,
    shift it by ``shift_px`` (N, 2) pixels."""
    n, _, h, w = images.shape
    cos, sin = torch.cos(angle), torch.sin(angle)
    sign = 1 - 2 * mirror.float()
    matrix = torch.stack([torch.stack([cos * sign, -sin], 1), torch.stack([sin * sign, cos], 1)], 1)
    offset = -shift_px * torch.tensor([2.0 / w, 2.0 / h])
    theta = torch.cat([matrix, offset[:, :, None]], 2).to(images.device, images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def draw_nuisance(n_images: int, spec: NuisanceSpec, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The random draws of ``random_nuisance`` for n images (on the CPU, from a seeded generator)."""
    def uniform(*shape):
        return torch.rand(*shape, generator=generator)

    extra_fwhm = torch.tensor(NORTH_EXTRA_FWHM_ARCSEC) * spec.seeing_scale * uniform(n_images, 3)
    return {
        "angle": (uniform(n_images) * 2 * math.pi) if spec.rotate else torch.zeros(n_images),
        "mirror": (uniform(n_images) < 0.5) if spec.rotate else torch.zeros(n_images, dtype=torch.bool),
        "shift_px": (uniform(n_images, 2) * 2 - 1) * spec.max_shift_px,
        "blur_sigma_px": extra_fwhm / FWHM_PER_SIGMA / spec.pixel_scale_arcsec,
        "noise_sigma_nmgy": (torch.tensor(DECALS_NOISE_SIGMA_NMGY) * spec.noise_scale * uniform(n_images, 3)
                             * PIXEL_SCALE_ARCSEC / spec.pixel_scale_arcsec),
        "flux_scale": 10 ** (-0.4 * spec.band_mag_sd * torch.randn(n_images, 3, generator=generator)),
    }


def random_nuisance(images: torch.Tensor, spec: NuisanceSpec, generator: torch.Generator) -> torch.Tensor:
    """The images (N, 3, S, S), stretched floats in [0, 1], as another survey/exposure/orientation
    would show them (module docstring)."""
    draws = draw_nuisance(len(images), spec, generator)
    device = images.device
    flux = unstretch(images.float()) * draws["flux_scale"].to(device)[:, :, None, None]
    if float(draws["blur_sigma_px"].max()) > 0.05:
        flux = gaussian_blur(flux, draws["blur_sigma_px"])
    noise = torch.randn(images.shape, generator=generator).to(device)
    flux = flux + noise * draws["noise_sigma_nmgy"].to(device)[:, :, None, None]
    out = stretch(flux)
    if spec.rotate or spec.max_shift_px > 0:
        out = turn_and_shift(out, draws["angle"], draws["mirror"], draws["shift_px"])
    return out.to(images.dtype)
