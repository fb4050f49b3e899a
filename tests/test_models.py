"""The VAE: shapes for 64/128/256 px and both architectures, the reference layer list, the loss formula, config round trip."""
import pytest
import torch

from VAE_model.models import KLEIN_TRANSFORMS, VAE, VAEConfig, vae_loss
from VAE_model.pose import from_canonical


@pytest.mark.parametrize("arch", ["reference", "light"])
@pytest.mark.parametrize("size", [64, 128, 256])
def test_output_shapes_follow_image_size(size, arch):
    model = VAE(VAEConfig(latent_dim=12, image_size=size, arch=arch)).eval()
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
    # drawn from mu in the measured pose, under one of the four Klein views (models.match_klein_view)
    pose = model.pose(images)
    views = [from_canonical(transform(model.decoder(mu)), pose) for transform in KLEIN_TRANSFORMS]
    assert all(any(torch.allclose(first[i], view[i], atol=1e-6) for view in views) for i in range(len(images)))


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


def test_calibrated_beta_is_twice_the_mse_per_pixel_and_moves_no_gradient():
    """--beta calibrated: the KL weight of a Gaussian decoder whose variance is the achieved MSE per pixel
    (sigma-VAE); the weight is a constant of the step, so the reconstruction gradient is the summed MSE's."""
    images = torch.zeros(2, 3, 64, 64)
    reconstruction = torch.full_like(images, 0.1).requires_grad_()
    mu, logvar = torch.ones(2, 4), torch.zeros(2, 4)
    total, mse, kl = vae_loss(reconstruction, images, mu, logvar, beta="calibrated")
    assert total.item() == pytest.approx(mse.item() + 2 * 0.01 * kl.item())     # MSE per pixel 0.1^2
    total.backward()
    fixed = reconstruction.detach().clone().requires_grad_()
    vae_loss(fixed, images, mu, logvar, beta=0.02)[0].backward()
    assert torch.allclose(reconstruction.grad, fixed.grad)


# ----------------------------------------------------------------------------- the two architectures
def leaf_layers(model):
    """(type, weight shape or None, extra settings) of every leaf module, in forward order."""
    rows = []
    for module in model.modules():
        if list(module.children()):
            continue
        shape = tuple(module.weight.shape) if getattr(module, "weight", None) is not None else None
        extra = {}
        if isinstance(module, torch.nn.LeakyReLU):
            extra = {"slope": module.negative_slope}
        elif isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            extra = {"stride": module.stride, "padding": module.padding}
            if isinstance(module, torch.nn.ConvTranspose2d):
                extra["output_padding"] = module.output_padding
        elif isinstance(module, torch.nn.Upsample):
            extra = {"scale": module.scale_factor, "mode": module.mode}
        rows.append((type(module).__name__, shape, extra))
    return rows


def test_reference_architecture_is_the_reference_studys_layer_for_layer():
    model = VAE(VAEConfig(latent_dim=40, image_size=256, arch="reference"))
    assert sum(p.numel() for p in model.parameters()) == 443_507
    leaky = ("LeakyReLU", None, {"slope": 0.01})            # PyTorch's default slope, everywhere
    up = ("Upsample", None, {"scale": 2.0, "mode": "nearest"})
    def conv(o, i): return ("Conv2d", (o, i, 3, 3), {"stride": (2, 2), "padding": (1, 1)})
    def tconv(i, o): return ("ConvTranspose2d", (i, o, 3, 3), {"stride": (2, 2), "padding": (1, 1), "output_padding": (1, 1)})
    pool = ("MaxPool2d", None, {})
    expected = [conv(32, 3), pool, leaky, conv(64, 32), pool, leaky, conv(128, 64), pool, leaky,
                ("Linear", (40, 2048), {}), ("Linear", (40, 2048), {}),              # to mu, to logvar
                ("Linear", (2048, 40), {}),                                           # to the 128 x 4 x 4 bottleneck
                up, tconv(128, 64), leaky, up, tconv(64, 32), leaky,
                up, tconv(32, 32), leaky, ("Conv2d", (3, 32, 3, 3), {"stride": (1, 1), "padding": (1, 1)}),
                ("ReLU", None, {})]
    assert leaf_layers(model) == expected
    # the image side through the decoder: 4 -> 16 -> 64 -> 256
    sides = []
    hooks = [block.register_forward_hook(lambda m, i, o: sides.append(o.shape[-1])) for block in model.decoder.features]
    model.eval()(torch.rand(1, 3, 256, 256))
    for hook in hooks:
        hook.remove()
    assert sides == [16, 64, 256]


def test_light_architecture_keeps_its_parameters_and_old_checkpoints_load_as_light():
    light = VAE(VAEConfig(latent_dim=40, image_size=256, arch="light"))
    assert sum(p.numel() for p in light.parameters()) == 506_611
    slopes = {m.negative_slope for m in light.modules() if isinstance(m, torch.nn.LeakyReLU)}
    assert slopes == {0.2}
    old = {"latent_dim": 40, "image_size": 256, "in_channels": 3, "channels": [32, 64, 128]}   # no "arch"
    assert VAEConfig.from_dict(old).arch == "light"
    assert VAE(VAEConfig.from_dict(old)).state_dict().keys() == light.state_dict().keys()
    for arch in ("reference", "light"):
        config = VAEConfig(latent_dim=5, image_size=64, arch=arch)
        assert VAEConfig.from_dict(config.to_dict()) == config


def test_unknown_architecture_is_a_one_line_error():
    with pytest.raises(ValueError, match="arch 'big'"):
        VAEConfig(arch="big")


def test_training_step_flops_match_the_issue_figures():
    """Forward + backward FLOPs (2 per multiply-add) per 256 px image: ~1.59 GFLOP reference, ~0.60 light."""
    from torch.utils.flop_counter import FlopCounterMode

    flops = {}
    for arch in ("reference", "light"):
        model = VAE(VAEConfig(latent_dim=40, image_size=256, arch=arch, pose="none"))   # the reference figures: plain VAE
        images = torch.rand(1, 3, 256, 256)
        with FlopCounterMode(display=False) as counter:
            reconstruction, mu, logvar = model(images, torch.randn(1, 40))
            vae_loss(reconstruction, images, mu, logvar)[0].backward()
        flops[arch] = counter.get_total_flops() / 1e9
    assert flops["reference"] == pytest.approx(1.59, abs=0.01)
    assert flops["light"] == pytest.approx(0.60, abs=0.01)
