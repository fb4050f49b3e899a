"""The convolutional VAE (two decoder variants) and its loss. Model code only.

Encoder (both variants): 3 blocks (32, 64, 128 channels), each Conv 3x3 stride 2 -> MaxPool 2 ->
LeakyReLU, so each block divides the image side by 4 (64 in all); linear layers to ``mu`` and
``logvar``. Decoder: a linear layer back to the 128-channel bottleneck, then, per ``arch``:

``reference``  the reference study's decoder, layer for layer: two blocks of nearest-neighbour
               upsampling x2 -> ConvTranspose 3x3 stride 2 (padding 1, output padding 1) ->
               LeakyReLU (128 -> 64 -> 32 channels), then nearest x2 -> ConvTranspose 3x3 stride 2
               32 -> 32 -> LeakyReLU -> Conv 3x3 32 -> 3 -> ReLU. LeakyReLU slope 0.01 (PyTorch's
               default) in encoder and decoder. 443,507 parameters at 256 px / latent 40.
``light``      this project's earlier decoder: three blocks of nearest x2 -> ConvTranspose 4x4
               stride 2 (padding 1) -> LeakyReLU(0.2) (128 -> 64 -> 32 -> 3), ReLU on the output;
               LeakyReLU slope 0.2 in the encoder too. 506,611 parameters at 256 px / latent 40,
               but fewer FLOPs: no 32-channel layers at full resolution.

Pose (``pose``): ``"moments"`` (the default) separates the pose from the content: the encoder sees each
galaxy in the canonical pose measured from its own light (pose.py: centre, position angle, mirror),
its features pooled over the four views the moments decide from faint signals, and the decoder's
canonical image is turned back to the observed pose under the view that matches the input best, so
the loss compares it with the input as observed and ``mu`` holds the content alone (the feature
scorecard, analysis/decals_7.py, measures how much that buys). ``"none"`` is the reference study's plain VAE; checkpoints written before
``pose`` existed load as ``"none"``.

ReLU on the output in both: the stretched images are >= 0. Works for any square input whose side
is divisible by 64 (256 px is the reference). Checkpoints written before ``arch`` existed hold
the light model and load as ``arch='light'`` (``VAEConfig.from_dict``).
"""
from __future__ import annotations

import torch
from torch import nn

from .config import ARCHITECTURES, CALIBRATED_BETA, LEAKY_SLOPE, LEGACY_ARCH, POSE_MODES, VAEConfig  # noqa: F401  (defined torch-free)
from .pose import from_canonical, moment_pose, to_canonical

# the Klein group of views the moments' faint-signal choices span (klein_view, match_klein_view):
# 0 identity, 1 half turn, 2 mirror y -> -y (rows flipped), 3 mirror x -> -x (columns flipped)
KLEIN_TRANSFORMS = (lambda t: t, lambda t: torch.rot90(t, 2, dims=(-2, -1)), lambda t: t.flip(-2),
                    lambda t: t.flip(-1))
KLEIN_VIEWS = len(KLEIN_TRANSFORMS)


def _encoder_block(in_channels: int, out_channels: int, slope: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1),
        nn.MaxPool2d(2),
        nn.LeakyReLU(slope),
    )


def _light_decoder_block(in_channels: int, out_channels: int, last: bool) -> nn.Sequential:
    # x2 upsampling then a stride-2 4x4 transposed convolution: x4 per block
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.ConvTranspose2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1),
        nn.ReLU() if last else nn.LeakyReLU(LEAKY_SLOPE["light"]),
    )


def _reference_decoder_block(in_channels: int, out_channels: int, image_channels: int | None) -> nn.Sequential:
    # (side - 1) * 2 - 2 * 1 + 3 + 1 = 2 * side: with the x2 upsampling, x4 per block
    layers = [nn.Upsample(scale_factor=2, mode="nearest"),
              nn.ConvTranspose2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1, output_padding=1),
              nn.LeakyReLU(LEAKY_SLOPE["reference"])]
    if image_channels is not None:   # the last block: a 3x3 convolution to the bands, ReLU
        layers += [nn.Conv2d(out_channels, image_channels, kernel_size=3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    def __init__(self, config: VAEConfig):
        super().__init__()
        widths = (config.in_channels, *config.channels)
        self.features = nn.Sequential(*[_encoder_block(a, b, config.leaky_slope)
                                        for a, b in zip(widths[:-1], widths[1:])])
        flat = config.channels[-1] * config.bottleneck_size ** 2
        self.to_mu = nn.Linear(flat, config.latent_dim)
        self.to_logvar = nn.Linear(flat, config.latent_dim)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = torch.flatten(self.features(images), 1)
        return self.to_mu(hidden), self.to_logvar(hidden)


class Decoder(nn.Module):
    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        self.from_latent = nn.Linear(config.latent_dim, config.channels[-1] * config.bottleneck_size ** 2)
        if config.arch == "light":      # 128 -> 64 -> 32 -> 3 channels
            widths = (*reversed(config.channels), config.in_channels)
            blocks = [_light_decoder_block(a, b, last=(i == len(widths) - 2))
                      for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]))]
        else:                           # 128 -> 64 -> 32 -> 32, then a 3x3 convolution 32 -> 3
            widths = (*reversed(config.channels), config.channels[0])
            n_blocks = len(widths) - 1
            blocks = [_reference_decoder_block(a, b, config.in_channels if i == n_blocks - 1 else None)
                      for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]))]
        self.features = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        side = self.config.bottleneck_size
        hidden = self.from_latent(z).view(-1, self.config.channels[-1], side, side)
        return self.features(hidden)


class VAE(nn.Module):
    """Convolutional VAE: ``forward`` returns (reconstruction, mu, logvar).

    With ``config.pose == "moments"`` the VAE is pose-separated: ``encode`` measures each galaxy's
    pose (centre, angle, mirror; ``pose.moment_pose``) and encodes the galaxy in its canonical pose,
    so ``mu`` is the content alone; ``forward`` draws the reconstruction in the canonical pose and
    turns it back to the observed pose (``pose.from_canonical``), so the loss compares it with the
    input as it was observed. ``pose(images)`` returns the measured pose.
    """

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)

    @property
    def pose_separated(self) -> bool:
        return self.config.pose != "none"

    def pose(self, images: torch.Tensor) -> torch.Tensor | None:
        """(N, 4) measured pose (pose.py), or None for the plain VAE."""
        return moment_pose(images) if self.pose_separated else None

    def _encode_posed(self, images: torch.Tensor, views: torch.Tensor | None = None):
        """(mu, logvar, pose, canonical image); pose and canonical None for the plain VAE."""
        pose = self.pose(images)
        if pose is None:
            return (*self.encoder(images), None, None)
        canonical = to_canonical(images, pose)
        if views is None:
            return (*self._encode_pooled(canonical), pose, canonical)
        return (*self.encoder(klein_view(canonical, views)), pose, canonical)

    def _encode_pooled(self, canonical: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) averaged over the canonical image's four views under the choices the moments
        make from faint signals (half turn: third moment; mirror: arm winding): the identity, the
        half turn, the mirror y -> -y and both. The content latents then do not depend on those choices
        when noise decides them (nearly symmetric galaxies; the same galaxy in another survey); the
        decoder draws in a convention of its own (``match_klein_view``)."""
        views = torch.cat([transform(canonical) for transform in KLEIN_TRANSFORMS])
        mu, logvar = self.encoder(views.contiguous(memory_format=torch.channels_last)
                                  if canonical.is_contiguous(memory_format=torch.channels_last) else views)
        n = len(canonical)
        return mu.view(KLEIN_VIEWS, n, -1).mean(0), logvar.view(KLEIN_VIEWS, n, -1).mean(0)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of the content: of the galaxy in its canonical pose when pose-separated."""
        mu, logvar, _, _ = self._encode_posed(images)
        return mu, logvar

    def decode(self, z: torch.Tensor, pose: torch.Tensor | None = None) -> torch.Tensor:
        """The image of latent z, in the given pose (canonical when None)."""
        image = self.decoder(z)
        return image if pose is None else from_canonical(image, pose)

    def forward(self, images: torch.Tensor, noise: torch.Tensor | None = None, views: torch.Tensor | None = None):
        """Reparameterisation z = mu + noise * exp(logvar / 2); noise ~ N(0, 1) drawn here in
        training unless given (the trainer passes it so results do not depend on the process count);
        z = mu in eval mode.

        Pose-separated model: the reconstruction is the decoder's canonical image drawn back in the
        observed pose under the Klein view that matches the input best (``match_klein_view``).
        ``views`` (N,) in 0..3: the trainer's draw of one Klein view per image (``klein_view``), encoded
        instead of the pooled four (TrainSettings.pool_views False, the default). Training on one random
        view costs a quarter of the encoder passes and teaches the encoder the same invariance that the
        pooling of ``encode`` makes exact; without ``views`` (``--pool-views``; evaluation, extraction,
        fine-tuning loops) the four views are pooled."""
        mu, logvar, pose, canonical = self._encode_posed(images, views)
        if noise is None and self.training:
            noise = torch.randn_like(mu)
        z = mu if noise is None else mu + noise.to(mu.dtype) * torch.exp(0.5 * logvar)
        if pose is None:
            return self.decoder(z), mu, logvar
        return from_canonical(match_klein_view(self.decoder(z), canonical), pose), mu, logvar


def match_klein_view(drawn: torch.Tensor, canonical: torch.Tensor) -> torch.Tensor:
    """Each decoded canonical image of ``drawn`` (N, C, S, S) under the one of its four Klein views
    (KLEIN_TRANSFORMS) that is closest to the input's canonical image ``canonical`` in summed squared error.

    The content latents are pooled over the four views, so they cannot tell the decoder which of them
    the moments picked where faint signals decided (which side is brighter, which way the arms wind),
    nor where structure goes that no convention pins (a knot above or below the major axis): drawn at
    the moments' view, such structure could only be drawn where the decoder guesses, and blurred.
    Matching lets the decoder keep a convention of its own. TARGET-VAE (Nasiri & Bepler 2022, NeurIPS,
    arXiv:2210.12918) infers a distribution over discrete rotations; here the best of the four views is
    taken (a hard assignment, as a min over the group), and the choice itself carries no gradient. It is
    made in the canonical frame, where the views are flips, so only the chosen view is turned back to the
    observed pose (one warp instead of four). Measured in the variants' table (README): it lowers the
    validation MSE; the content latents do not depend on it."""
    with torch.no_grad():
        error = torch.stack([(transform(drawn).float() - canonical.float()).pow(2).flatten(1).sum(1)
                             for transform in KLEIN_TRANSFORMS])                       # (views, N)
    return klein_view(drawn, error.argmin(0))


def klein_view(canonical: torch.Tensor, views: torch.Tensor) -> torch.Tensor:
    """Each canonical image (N, C, S, S) under its view (N,) of KLEIN_TRANSFORMS."""
    views = views.to(canonical.device)
    out = canonical.clone()
    for k, transform in enumerate(KLEIN_TRANSFORMS[1:], start=1):
        chosen = views == k
        if chosen.any():
            out[chosen] = transform(canonical[chosen])
    return out


def vae_loss(reconstruction: torch.Tensor, images: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
             beta: float | str = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """VAE loss per image, averaged over the batch: (total, reconstruction term, KL term).

        L = sum_pixels (x_hat - x)^2  +  beta * KL( N(mu, sigma^2) || N(0, 1) ),
        KL = -1/2 * sum_latent (1 + logvar - mu^2 - exp(logvar))

    i.e. the summed squared error of each image (the reference's summed MSE) plus beta times
    the closed-form KL divergence (Kingma & Welling 2014, Appendix B); beta = 1 is the reference.
    L / (2 s^2) is the negative ELBO of a Gaussian decoder with pixel variance s^2 = beta / 2, so a
    fixed beta fixes how well the decoder is assumed to draw. ``beta = 'calibrated'`` (config.
    CALIBRATED_BETA) uses the variance the decoder achieves, the batch's mean squared error per pixel
    (the optimal shared variance of Rybkin, Daniilidis & Levine 2021, sigma-VAE, with the same
    gradients as their log-variance form): beta = 2 * MSE per pixel, taken as a constant in the
    gradient, at any image size (under DDP: of each process's slice of the batch). Computed in float32
    even under mixed precision.
    """
    batch = images.shape[0]
    squared_error = (reconstruction.float() - images.float()).pow(2).sum() / batch
    kl = -0.5 * torch.sum(1 + logvar.float() - mu.float().pow(2) - logvar.float().exp()) / batch
    if beta == CALIBRATED_BETA:
        beta = 2.0 * squared_error.detach() / images[0].numel()
    return squared_error + beta * kl, squared_error, kl
