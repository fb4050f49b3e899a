"""A galaxy's pose (centre, position angle, mirror) from its own light, and the warps to and from
its canonical pose.

The pose-separated VAE (``VAEConfig.pose = "moments"``, models.py) encodes every galaxy in its
canonical pose and draws the reconstruction back in the observed pose, so ``mu`` holds the content
alone and the pose is returned beside it. The pose is measured, not learned: a learned pose head
(spatial-VAE style; Bepler et al. 2019, NeurIPS) never became equivariant in this project's
prototype, while the moments below are equivariant by construction: turning or mirroring the image
turns or mirrors the measured pose with it, so the canonical image does not change (exactly for
quarter turns and mirrors, up to interpolation for other angles).

Measured on the summed g + r + z light of the stretched image, sky (the median of a 2-pixel border)
subtracted and negative pixels set to 0, under a circular Gaussian window (sigma = a quarter of
the image side, re-centred on the centroid twice) that keeps neighbours in the corners from pulling
the moments:
  centre     the windowed centroid (the shift);
  angle      the major axis of the windowed inertia tensor, 1/2 atan2(2 I_xy, I_xx - I_yy) (the
             position angle, as for the adaptive moments of Bernstein & Jarvis 2002, AJ 123, 583);
  180 deg    the axis points to the brighter side: the sign of the third moment sum w x'^3 along
             the major axis (x' after the rotation);
  mirror     spiral chirality: the twist of the m = 2 phase from the inner to the outer light,
             Im(c2_outer * conj(c2_inner)) with c2 = sum w (x + iy)^2 / |x + iy|^2 over r < r_rms and
             r >= r_rms; a mirror image twists the other way, so the canonical galaxy always turns
             the same way (S/Z winding carries no morphology, e.g. Land et al. 2008, MNRAS 388, 1686).
Where a galaxy has no preferred axis (round), no third moment or no twist, the choice is set by
noise; the canonical image is then nearly the same either way, which is why those ambiguities cost
little (the consistency term of training.py, when on, teaches the encoder the rest).

Pose tensor: (N, 4) float = (dx, dy, angle, mirror): the centroid's offset from the image centre in
pixels (x along columns, y along rows), the angle in radians of the canonical x axis on the image,
mirror 1.0 when the canonical image is the mirror image (y -> -y in the canonical frame).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

POSE_FIELDS = ("pose_dx_px", "pose_dy_px", "pose_angle_deg", "pose_mirror")
WINDOW_SIGMA_FRACTION = 0.25     # Gaussian window sigma / image side
WINDOW_ITERATIONS = 2            # re-centrings of the window on the centroid
BORDER_PX = 2                    # border width whose median is the sky level


def _sky_subtracted_light(images: torch.Tensor) -> torch.Tensor:
    light = images.float().sum(1)                                       # (N, S, S)
    border = torch.cat([light[:, :BORDER_PX].flatten(1), light[:, -BORDER_PX:].flatten(1),
                        light[:, :, :BORDER_PX].flatten(1), light[:, :, -BORDER_PX:].flatten(1)], 1)
    return (light - border.median(1).values[:, None, None]).clamp_min(0)


@torch.no_grad()
def moment_pose(images: torch.Tensor) -> torch.Tensor:
    """(N, 4) pose (dx, dy, angle, mirror) of each image (N, C, S, S); see the module docstring.

    The Gaussian window is separable, exp(-(x-xc)^2/2s^2) exp(-(y-yc)^2/2s^2), so it is built from two
    (N, S) vectors, and the m = 2 phase is summed in real arithmetic: the pose costs a few per cent of
    a training step instead of as much as an encoder pass."""
    light = _sky_subtracted_light(images)
    n, side = light.shape[0], light.shape[-1]
    coords = torch.arange(side, device=light.device, dtype=light.dtype) - (side - 1) / 2
    two_sigma2 = 2 * (WINDOW_SIGMA_FRACTION * side) ** 2
    xc = torch.zeros(n, 1, device=light.device, dtype=light.dtype)
    yc = torch.zeros(n, 1, device=light.device, dtype=light.dtype)
    tiny = 1e-12
    for _ in range(WINDOW_ITERATIONS + 1):
        window_x = torch.exp(-(coords - xc) ** 2 / two_sigma2)           # (N, S) along columns
        window_y = torch.exp(-(coords - yc) ** 2 / two_sigma2)           # (N, S) along rows
        weight = light * window_y[:, :, None] * window_x[:, None, :]
        column_sums, row_sums = weight.sum(1), weight.sum(2)             # (N, S) each
        total = column_sums.sum(1, keepdim=True) + tiny
        xc, yc = (column_sums * coords).sum(1, keepdim=True) / total, (row_sums * coords).sum(1, keepdim=True) / total
    u = (coords - xc)[:, None, :]                                        # (N, 1, S)
    v = (coords - yc)[:, :, None]                                        # (N, S, 1)
    ixx = (column_sums * (coords - xc) ** 2).sum(1)
    iyy = (row_sums * (coords - yc) ** 2).sum(1)
    ixy = (weight * u * v).sum((1, 2))
    angle = 0.5 * torch.atan2(2 * ixy, ixx - iyy)
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    along = u * cos + v * sin                                          # x' (major axis)
    third = (weight * along ** 3).sum((1, 2))
    angle = torch.where(third < 0, angle + math.pi, angle)
    # chirality: does the m = 2 phase turn anticlockwise (twist > 0) from the inner to the outer light?
    # phase2 = (u + iv)^2 / |u + iv|^2 = ((u^2 - v^2) + 2uv i) / r^2
    r2 = u * u + v * v
    r_rms2 = ((ixx + iyy) / total.flatten())[:, None, None]
    real, imag = (u * u - v * v) / (r2 + tiny), 2 * u * v / (r2 + tiny)
    inner_weight = weight * (r2 < r_rms2)
    outer_weight = weight - inner_weight
    inner_re, inner_im = (inner_weight * real).sum((1, 2)), (inner_weight * imag).sum((1, 2))
    outer_re, outer_im = (outer_weight * real).sum((1, 2)), (outer_weight * imag).sum((1, 2))
    twist = outer_im * inner_re - outer_re * inner_im                  # Im(outer * conj(inner))
    mirror = (twist < 0).to(light.dtype)
    angle = torch.remainder(angle + math.pi, 2 * math.pi) - math.pi   # (-pi, pi]
    return torch.stack([xc.flatten(), yc.flatten(), angle, mirror], 1)


def _affine(pose: torch.Tensor, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, t): canonical -> observed position in grid_sample's normalised coordinates (align_corners
    False: a square image has the same scale along x and y, so the rotation carries over)."""
    angle, mirror = pose[:, 2], pose[:, 3]
    cos, sin = torch.cos(angle), torch.sin(angle)
    sign = 1 - 2 * mirror                                              # -1: y -> -y in the canonical frame
    a = torch.stack([torch.stack([cos, -sin * sign], 1), torch.stack([sin, cos * sign], 1)], 1)   # (N, 2, 2)
    t = pose[:, :2] * (2.0 / side)
    return a, t


def _warp(images: torch.Tensor, matrix: torch.Tensor, offset: torch.Tensor, padding: str = "zeros") -> torch.Tensor:
    theta = torch.cat([matrix, offset[:, :, None]], 2).to(images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode=padding, align_corners=False)


def to_canonical(images: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
    """The galaxy centred, its major axis along x, its brighter side to +x, winding one way."""
    a, t = _affine(pose.to(images.device, torch.float32), images.shape[-1])
    # outside the image: 0, the sky level of the stretched, sky-subtracted images
    return _warp(images, a, t)


def from_canonical(images: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
    """Inverse of ``to_canonical``: a canonical-pose image drawn back in the observed pose."""
    a, t = _affine(pose.to(images.device, torch.float32), images.shape[-1])
    inverse = torch.linalg.inv(a)
    # the observed corners that the turned canonical frame does not cover take its nearest edge pixel (sky):
    # on the demo mock the round trip to_canonical -> from_canonical then costs an MSE/pixel of 0.00030
    # instead of 0.00052 with zeros
    return _warp(images, inverse, -(inverse @ t[:, :, None])[:, :, 0], padding="border")


def pose_table_values(pose: torch.Tensor) -> torch.Tensor:
    """The pose as written in tables (POSE_FIELDS): angle in degrees, the rest as measured."""
    out = pose.clone().float()
    out[:, 2] = torch.rad2deg(out[:, 2])
    return out
