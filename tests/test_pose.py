"""Pose separation: the pose is recovered from a galaxy's own light, a turned or mirrored copy gives the
same canonical image and the same content latents (pose-separated VAE), and not for the plain VAE."""
import math

import numpy as np
import pytest
import torch

from VAE_model.models import VAE, VAEConfig, match_klein_view
from VAE_model.pose import from_canonical, moment_pose, to_canonical

SIDE = 64


def galaxy(angle_rad: float = 0.5, dx: float = 2.5, dy: float = -1.5, twist: float = 0.3) -> torch.Tensor:
    """(1, 3, S, S) a lopsided elongated galaxy with two wound arms, major axis at ``angle_rad``."""
    y, x = torch.meshgrid(torch.arange(SIDE) - (SIDE - 1) / 2, torch.arange(SIDE) - (SIDE - 1) / 2, indexing="ij")
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    u, v = (x - dx) * c + (y - dy) * s, -(x - dx) * s + (y - dy) * c
    disc = torch.exp(-(u ** 2 / 60 + v ** 2 / 15)) + 0.5 * torch.exp(-((u - 6) ** 2 + (v - 2) ** 2) / 8)
    r, phi = torch.sqrt(u ** 2 + v ** 2) + 1e-6, torch.atan2(v, u)
    image = 0.6 * (disc + 0.25 * torch.exp(-r / 10) * (1 + torch.cos(2 * phi - twist * r)))
    return torch.stack([0.5 * image, 0.7 * image, image])[None].clamp(0, 1)


def copies(image):
    return {"quarter turn": torch.rot90(image, 1, dims=(-2, -1)), "half turn": torch.rot90(image, 2, dims=(-2, -1)),
            "mirror": image.flip(-1), "mirror + turn": torch.rot90(image.flip(-2), 3, dims=(-2, -1))}


def elliptical(angle_rad: float, dx: float, dy: float) -> torch.Tensor:
    y, x = torch.meshgrid(torch.arange(SIDE) - (SIDE - 1) / 2, torch.arange(SIDE) - (SIDE - 1) / 2, indexing="ij")
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    u, v = (x - dx) * c + (y - dy) * s, -(x - dx) * s + (y - dy) * c
    return (0.8 * torch.exp(-(u ** 2 / 60 + v ** 2 / 15))).expand(1, 3, SIDE, SIDE)


def test_pose_recovers_centre_and_position_angle():
    for angle in (0.3, 1.2, -0.9):
        pose = moment_pose(elliptical(angle, dx=2.5, dy=-1.5))[0]
        assert pose[0] == pytest.approx(2.5, abs=0.2) and pose[1] == pytest.approx(-1.5, abs=0.2)
        # the major axis, modulo the half turn that the third moment decides
        difference = (float(pose[2]) - angle) % math.pi
        assert min(difference, math.pi - difference) < math.radians(1)


def test_turned_and_mirrored_copies_have_the_same_canonical_image():
    image = galaxy()
    canonical = to_canonical(image, moment_pose(image))
    for name, copy in copies(image).items():
        other = to_canonical(copy, moment_pose(copy))
        assert torch.allclose(canonical, other, atol=1e-4), name


def test_canonical_and_back_is_the_observed_image():
    image = galaxy()
    pose = moment_pose(image)
    back = from_canonical(to_canonical(image, pose), pose)
    inner = slice(8, -8)   # corners turned out of the frame and back hold sky (0)
    assert torch.mean((back - image)[..., inner, inner] ** 2) < 1e-2 * torch.mean(image ** 2)   # two bilinear resamplings


def test_mirror_follows_the_winding_of_the_arms():
    mirror_s = moment_pose(galaxy(twist=0.3))[0, 3]
    mirror_z = moment_pose(galaxy(twist=-0.3))[0, 3]
    assert mirror_s != mirror_z


@pytest.mark.parametrize("pose_mode, invariant", [("moments", True), ("none", False)])
def test_content_latents_of_a_turned_copy(pose_mode, invariant):
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=8, image_size=SIDE, pose=pose_mode)).eval()
    images = torch.cat([galaxy(0.5), galaxy(1.4, dx=-1, dy=2, twist=-0.2)])
    with torch.no_grad():
        mu = model.encode(images)[0]
        spread = torch.cdist(mu, mu)[0, 1]
        for name, copy in copies(images).items():
            moved = (model.encode(copy)[0] - mu).norm(dim=1).max()
            if invariant:
                assert moved < 1e-3 * spread, name
            elif name == "quarter turn":
                assert moved > 0.05 * spread, name


def test_pose_separated_vae_reconstructs_in_the_observed_pose():
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=8, image_size=SIDE, pose="moments")).eval()
    image = galaxy()
    with torch.no_grad():
        reconstruction, mu, _ = model(image)
        pose = model.pose(image)
        # the decoder's canonical image, turned to the galaxy's pose under the best-matching Klein view
        canonical = to_canonical(image, pose)
        assert torch.allclose(reconstruction, from_canonical(match_klein_view(model.decoder(mu), canonical), pose),
                              atol=1e-6)
        turned, _, _ = model(torch.rot90(image, 1, dims=(-2, -1)))
    assert torch.allclose(turned, torch.rot90(reconstruction, 1, dims=(-2, -1)), atol=1e-3)


def test_old_checkpoints_load_as_plain_vae():
    values = VAEConfig(latent_dim=4, image_size=64).to_dict()
    values.pop("pose")
    assert VAEConfig.from_dict(values).pose == "none"
    with pytest.raises(ValueError, match="pose"):
        VAEConfig(pose="learned")
    assert np.isfinite(moment_pose(torch.zeros(2, 3, SIDE, SIDE)).numpy()).all()   # blank: no NaN


def test_training_encodes_the_drawn_klein_view_and_encoding_pools_all_four():
    from VAE_model.models import KLEIN_VIEWS, klein_view

    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=4, image_size=SIDE, pose="moments"))
    images = torch.cat([galaxy(0.4), galaxy(1.1, twist=-0.3), elliptical(0.2, 1.0, 0.5), galaxy(-0.7)])
    canonical = to_canonical(images, moment_pose(images))
    views = torch.tensor([0, 1, 2, 3])
    # the views: identity, half turn, rows flipped, columns flipped
    expected = torch.stack([canonical[0], torch.rot90(canonical[1], 2, dims=(-2, -1)), canonical[2].flip(-2),
                            canonical[3].flip(-1)])
    assert torch.equal(klein_view(canonical, views), expected)
    with torch.no_grad():
        _, mu_one_view, _ = model(images, torch.zeros(4, 4), views)
        assert torch.allclose(mu_one_view, model.encoder(expected)[0], atol=1e-5)
        per_view = torch.stack([model.encoder(klein_view(canonical, torch.full((4,), k)))[0]
                                for k in range(KLEIN_VIEWS)])
        assert torch.allclose(model.encode(images)[0], per_view.mean(0), atol=1e-5)
        # the pooled content of a mirrored copy is that of the galaxy, whichever view training drew
        assert torch.allclose(model.encode(images.flip(-1))[0], model.encode(images)[0], atol=1e-3)


def test_reconstruction_is_drawn_in_the_klein_view_that_matches_the_input():
    from VAE_model.models import KLEIN_TRANSFORMS

    torch.manual_seed(1)
    drawn = torch.rand(4, 3, SIDE, SIDE)      # no symmetry: the four views of each differ
    # the input's canonical image i is drawn image i under view i, plus noise
    each_in_its_view = torch.cat([KLEIN_TRANSFORMS[i](drawn[i:i + 1]) for i in range(4)])
    canonical = each_in_its_view + 0.05 * torch.randn(4, 3, SIDE, SIDE)
    matched = match_klein_view(drawn.clone().requires_grad_(True), canonical)
    assert torch.equal(matched, each_in_its_view)
    assert matched.requires_grad                            # the decoder learns through the chosen view
    # the model's reconstruction is matched: never further from the input than the moments' view
    model = VAE(VAEConfig(latent_dim=4, image_size=SIDE, pose="moments")).eval()
    galaxies = torch.cat([galaxy(0.4), elliptical(0.2, 1.0, 0.5), galaxy(1.1, twist=-0.3)])
    pose = moment_pose(galaxies)
    canonical_input = to_canonical(galaxies, pose)
    with torch.no_grad():
        reconstruction, mu, _ = model(galaxies)
        at_moments_view = model.decoder(mu)
        matched = match_klein_view(at_moments_view, canonical_input)
    error = lambda image: (image - canonical_input).pow(2).flatten(1).sum(1)
    assert (error(matched) <= error(at_moments_view) + 1e-6).all()
    assert torch.allclose(reconstruction, from_canonical(matched, pose))
