"""Supervised CNN baseline: the VAE's encoder architecture trained end to end on the class labels.

The question it answers: do the unsupervised latents (plus a random forest) classify as well as
a network of the same size that sees the labels? ``EncoderClassifier`` is ``models.Encoder``'s
convolutional part (same blocks, same VAEConfig) with the mu head replaced by a linear layer
to the classes; it starts from random weights (nothing is taken from the trained VAE).

Training per cross-validation fold (``classify.planned_folds``, the same folds as the latent and
morphology classifiers): cross-entropy, Adam (lr 1e-3), random flips and quarter turns
(``batches.draw_augmentation``/``batches.augment``), a fixed number of epochs, seeded by
(seed, fold); the model after the last epoch predicts the held-out fold. The input is
standardised per channel with the training fold's mean and standard deviation (stored as
buffers): on the stretched images, mostly dark sky, this makes the few hundred galaxies of a
question enough to train from scratch in a few epochs (without it the network stays at the
majority class for many epochs).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .classify import summarise_folds
from .batches import augment, draw_augmentation, to_float
from .data import make_batches
from .models import Encoder, VAEConfig
from .runtime import Precision, pick_precision


class EncoderClassifier(nn.Module):
    """models.Encoder's convolutional blocks -> flatten -> Linear(n_classes)."""

    def __init__(self, config: VAEConfig, n_classes: int):
        super().__init__()
        self.features = Encoder(config).features
        flat = config.channels[-1] * config.bottleneck_size ** 2
        self.head = nn.Linear(flat, n_classes)

        # per-channel input standardisation, set from the training images (``set_input_scaling``)
        self.register_buffer("input_mean", torch.zeros(1, config.in_channels, 1, 1))
        self.register_buffer("input_std", torch.ones(1, config.in_channels, 1, 1))

    def set_input_scaling(self, images_uint8) -> None:
        """Per-channel mean and standard deviation of (up to 2048) uint8 training images."""
        pixels = torch.from_numpy(np.asarray(images_uint8, dtype=np.float32) / 255.0)
        self.input_mean.copy_(pixels.mean(dim=(0, 2, 3)).view(1, -1, 1, 1))
        self.input_std.copy_(pixels.std(dim=(0, 2, 3)).clamp_min(1e-3).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        images = (images - self.input_mean) / self.input_std
        return self.head(torch.flatten(self.features(images), 1))


def _seed(*keys: int) -> int:
    return int(np.random.SeedSequence(list(keys)).generate_state(1)[0])


def _read(images, rows: np.ndarray) -> torch.Tensor:
    """uint8 images of the given rows (sorted reads of a memory-mapped cache), in the order of rows."""
    order = np.argsort(rows, kind="stable")
    batch = np.empty((len(rows), *images.shape[1:]), dtype=np.uint8)
    batch[order] = images[rows[order]]
    return torch.from_numpy(batch)


def train_classifier(images, rows: np.ndarray, targets: np.ndarray, n_classes: int, config: VAEConfig, device,
                     epochs: int = 10, batch_size: int = 32, lr: float = 1e-3, seed: int = 0,
                     precision: Precision | None = None) -> EncoderClassifier:
    """Train an EncoderClassifier on ``images[rows]`` (uint8 (N, 3, S, S), e.g. the memory-mapped
    image cache; read batch by batch) with integer ``targets`` (one per row)."""
    device = torch.device(device)
    precision = precision or pick_precision(device)
    rows = np.asarray(rows)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = EncoderClassifier(config, n_classes)
    sample = np.random.default_rng(seed).permutation(len(rows))[:2048]
    model.set_input_scaling(_read(images, rows[sample]).numpy())
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scaler = precision.scaler()
    loss_fn = nn.CrossEntropyLoss()
    targets_t = torch.as_tensor(targets, dtype=torch.long)
    model.train()
    for epoch in range(epochs):
        epoch_seed = _seed(seed, epoch)
        for batch in make_batches(np.arange(len(rows)), batch_size, shuffle=True, seed=epoch_seed):
            x = to_float(_read(images, rows[batch]), device)
            x = augment(x, *draw_augmentation(len(batch), generator))
            with precision.autocast():
                logits = model(x)
            loss = loss_fn(logits.float(), targets_t[batch].to(device))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"CNN baseline: non-finite loss at epoch {epoch}")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
    return model.eval()


@torch.no_grad()
def predict(model: EncoderClassifier, images, rows: np.ndarray, device, batch_size: int = 256,
            precision: Precision | None = None) -> np.ndarray:
    """Predicted class index of every image ``images[rows]``."""
    device = torch.device(device)
    precision = precision or pick_precision(device)
    rows = np.asarray(rows)
    out = []
    for start in range(0, len(rows), batch_size):
        x = to_float(_read(images, rows[start:start + batch_size]), device)
        with precision.autocast():
            out.append(model(x).float().argmax(1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=int)


def cross_validate_cnn(images, rows: np.ndarray, labels: np.ndarray, splits, config: VAEConfig, device,
                       epochs: int = 10, batch_size: int = 32, lr: float = 1e-3, seed: int = 0,
                       classes: list | None = None, progress: bool = False,
                       precision: Precision | None = None) -> dict:
    """Scores of the supervised CNN on the given (train, test) splits, like ``classify.cross_validate``.

    images: uint8 (N_all, 3, S, S), e.g. the image cache (memory-mapped; only batches are read);
    rows: the image row of each galaxy; labels: the class label of each galaxy; splits index galaxies.
    """
    from tqdm import tqdm

    rows, labels = np.asarray(rows), np.asarray(labels)
    classes = sorted(np.unique(labels)) if classes is None else list(classes)
    code = {c: i for i, c in enumerate(classes)}
    targets = np.array([code[c] for c in labels])
    truths, predictions = [], []
    for fold, (train, test) in enumerate(tqdm(splits, desc="CNN folds", unit="fold", disable=not progress, leave=False)):
        model = train_classifier(images, rows[train], targets[train], len(classes), config, device, epochs,
                                 batch_size, lr, _seed(seed, fold), precision)
        truths.append(labels[test])
        predicted = predict(model, images, rows[test], device, precision=precision)
        predictions.append(np.asarray(classes, dtype=object)[predicted])
    return summarise_folds(truths, predictions, classes)
