"""The settings the scripts' flags default to: the VAE's and the training's dataclasses and the
constants of the other stages. One source of defaults, imported by the library modules that use them.

Torch-free and pandas-free on purpose: the scripts build their argument parsers from these defaults,
so ``--help`` and a bad flag answer without importing torch (~2 s) or pandas. The modules that
defined them before re-export them (``models.VAEConfig``, ``training.TrainSettings``,
``adaptation.METHODS``, ``morph_classes.DEFAULT_THRESHOLD``...); import them from either place.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .imageio import PIXEL_SCALE_ARCSEC


ARCHITECTURES = ("reference", "light")
# "none": the plain VAE (the reference study's); "moments": pose-separated, the encoder sees each galaxy
# in the canonical pose measured from its own light and the decoder's image is turned back (pose.py)
POSE_MODES = ("none", "moments")
LEGACY_ARCH = "light"
# LeakyReLU negative slope: the reference uses nn.LeakyReLU() (PyTorch's default 0.01); the light
# model keeps the 0.2 it was trained with
LEAKY_SLOPE = {"reference": 0.01, "light": 0.2}


@dataclass(frozen=True)
class VAEConfig:
    """Everything needed to rebuild the VAE; saved inside every checkpoint."""

    latent_dim: int = 40              # the one hyper-parameter (reference 40)
    image_size: int = 256             # pixels per side, divisible by 64
    in_channels: int = 3              # g, r, z
    channels: tuple[int, ...] = (32, 64, 128)
    arch: str = "light"               # decoder variant, one of ARCHITECTURES (see models.py's docstring)
    pose: str = "moments"             # one of POSE_MODES; "none" is the reference study's plain VAE
    # the framing of the images it was trained on (framing.Framing.settings() as JSON; "" = whole cutouts), so
    # that images encoded later from files (api.encode, similarity queries) are framed the same way
    framing: str = ""

    def __post_init__(self):
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"arch {self.arch!r}: expected one of {', '.join(ARCHITECTURES)}")
        if self.pose not in POSE_MODES:
            raise ValueError(f"pose {self.pose!r}: expected one of {', '.join(POSE_MODES)}")
        reduction = 4 ** len(self.channels)
        if self.image_size % reduction:
            raise ValueError(f"image_size {self.image_size} must be divisible by {reduction}")

    @property
    def bottleneck_size(self) -> int:
        return self.image_size // 4 ** len(self.channels)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "VAEConfig":
        values = dict(values)
        values["channels"] = tuple(values.get("channels", cls.channels))
        values.setdefault("arch", LEGACY_ARCH)   # checkpoints from before `arch` hold the light model
        values.setdefault("pose", "none")        # and those from before `pose` the plain VAE
        return cls(**values)

    @property
    def leaky_slope(self) -> float:
        return LEAKY_SLOPE[self.arch]


# --beta calibrated: the KL weight of a calibrated Gaussian decoder, twice the batch's reconstruction MSE per pixel
# (models.vae_loss; Rybkin et al. 2021, sigma-VAE)
CALIBRATED_BETA = "calibrated"


def kl_weight_value(value) -> float | str:
    """A KL weight as typed (--beta) or stored (args.json, a checkpoint's settings): CALIBRATED_BETA or a number."""
    return CALIBRATED_BETA if str(value).strip().lower() == CALIBRATED_BETA else float(value)


@dataclass
class TrainSettings:
    """The reference training setting (real DECaLS, 256 px); every script's defaults come from here."""

    epochs: int = 50
    batch_size: int = 512
    lr: float = 1e-5
    beta: float | str = 1.0       # a weight >= 0, or CALIBRATED_BETA
    val_fraction: float = 0.1
    augment: bool = True
    seed: int = 0
    workers: int = 4
    # channels-last: faster convolutions with cuDNN and with oneDNN on CPU (bench/benchmark.py)
    channels_last: bool = True
    compile: bool = False
    # weight of the consistency term (training.consistency_loss); 0 = the plain VAE objective
    consistency: float = 0.0
    # pose-separated VAE: encode the four Klein views of each galaxy pooled in training, as encoding
    # does, instead of one random view (models.VAE.forward): a lower reconstruction error for about twice
    # the training time on CPU (206 against 399 images/s), the same content features (README, the variants' table)
    pool_views: bool = False
    # pixel scale of the training images (arcsec/pixel), which sizes the nuisance transforms' blur and noise
    pixel_scale_arcsec: float = PIXEL_SCALE_ARCSEC


# ---------------------------------------------------------------- Part II: domain adaptation (adaptation/)
ADAPT_METHODS = ("mmd", "paired", "consistency", "consistency_mmd")    # adaptation.METHODS (adaptation/training.py)
ADAPT_CONSISTENCY_WEIGHT = 10.0   # AdaptSettings.consistency_weight: bench/feature_variants.py's weight
ADAPT_NUISANCE_SCALE = 1.0        # AdaptSettings.nuisance_scale: the survey-like nuisances as Part I trains with them
# Bandwidths of the multi-kernel RBF, as multiples of the median heuristic (median pairwise
# squared distance of the pooled batch): spans a factor 16, so the kernel stays informative
# whether the two surveys' clouds overlap or sit far apart (DAN uses a similar geometric family).
DEFAULT_KERNEL_MULTIPLIERS = (0.25, 0.5, 1.0, 2.0, 4.0)

# ---------------------------------------------------------------- catalogs and classes (catalog.py, morph_classes.py)
CAMPAIGNS = ("dr5", "dr8", "dr12")   # Galaxy Zoo DECaLS campaigns whose columns a catalog may carry
DEFAULT_THRESHOLD = 0.6              # vote-fraction threshold of the class rules, as in the reference study

# ---------------------------------------------------------------- similarity search (similarity.py)
DEFAULT_K = 10
DEFAULT_RADIUS_ARCSEC = 1.0       # a galaxy's catalog position is good to << 1 arcsec (Legacy Survey astrometry)

# the pixel-PCA baseline (decals_5, the scorecard): images block-averaged to at most this side first
PCA_MAX_PX = 32
