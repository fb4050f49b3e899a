"""The reference VAE: shapes for 64/128/256 px, the loss formula, config round trip."""
import pytest
import torch

from VAE_model.models import VAE, VAEConfig, vae_loss


@pytest.mark.parametrize("size", [64, 128, 256])
def test_output_shapes_follow_image_size(size):
    model = VAE(VAEConfig(latent_dim=12, image_size=size)).eval()
    images = torch.rand(2, 3, size, size)
    reconstruction, mu, logvar = model(images)
    assert reconstruction.shape == images.shape
    assert mu.shape == logvar.shape == (2, 12)
    assert (reconstruction >= 0).all()  # ReLU output


def test_image_size_must_be_divisible_by_64():
    with pytest.raises(ValueError, match="divisible by 64"):
        VAEConfig(image_size=100)


def test_config_round_trip_rebuilds_the_same_architecture():
    config = VAEConfig(latent_dim=7, image_size=128)
    assert VAEConfig.from_dict(config.to_dict()) == config


def test_eval_mode_is_deterministic_and_uses_mu():
    model = VAE(VAEConfig(latent_dim=4, image_size=64)).eval()
    images = torch.rand(3, 3, 64, 64)
    first, mu, _ = model(images)
    assert torch.equal(first, model(images)[0])
    assert torch.allclose(first, model.decode(mu))


def test_loss_is_summed_squared_error_plus_beta_kl():
    images = torch.zeros(2, 3, 64, 64)
    reconstruction = torch.full_like(images, 0.5)
    mu, logvar = torch.ones(2, 4), torch.zeros(2, 4)
    total, mse, kl = vae_loss(reconstruction, images, mu, logvar, beta=2.0)
    assert mse.item() == pytest.approx(0.25 * 3 * 64 * 64)      # per image, summed over pixels
    assert kl.item() == pytest.approx(0.5 * 4)                 # 1/2 sum mu^2 for unit variance
    assert total.item() == pytest.approx(mse.item() + 2.0 * kl.item())
    _, _, kl_zero = vae_loss(images, images, torch.zeros(2, 4), torch.zeros(2, 4))
    assert kl_zero.item() == pytest.approx(0.0)
