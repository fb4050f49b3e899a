"""Supervised CNN baseline: the VAE's encoder architecture trained end to end on the class labels.

The question it answers: do the unsupervised latents (plus a random forest) classify as well as
a network of the same size that sees the labels? ``EncoderClassifier`` is ``models.Encoder``'s
convolutional part (same blocks, same VAEConfig) with the mu head replaced by a linear layer
to the classes; it starts from random weights (nothing is taken from the trained VAE).

Training per cross-validation fold (``classify.fold_indices``, the same folds as the latent and
morphology classifiers): cross-entropy, Adam (lr 1e-3), random flips and quarter turns
(``data.draw_augmentation``/``data.augment``), a fixed number of epochs, seeded by
(seed, fold); the model after the last epoch predicts the held-out fold.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .classify import summarise_folds
from .data import augment, draw_augmentation, make_batches, to_float
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

    def set_input_scaling(self, images_uint8: np.ndarray) -> None:
        pixels = torch.from_numpy(np.asarray(images_uint8[:2048], dtype=np.float32) / 255.0)
        self.input_mean.copy_(pixels.mean(dim=(0, 2, 3)).view(1, -1, 1, 1))
        self.input_std.copy_(pixels.std(dim=(0, 2, 3)).clamp_min(1e-3).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        images = (images - self.input_mean) / self.input_std
        return self.head(torch.flatten(self.features(images), 1))


def _seed(*keys: int) -> int:
    return int(np.random.SeedSequence(list(keys)).generate_state(1)[0])


def train_classifier(images: np.ndarray, targets: np.ndarray, n_classes: int, config: VAEConfig, device,
                     epochs: int = 10, batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
                     precision: Precision | None = None) -> EncoderClassifier:
    """Train an EncoderClassifier on uint8 images (n, 3, S, S) and integer targets (n,)."""
    device = torch.device(device)
    precision = precision or pick_precision(device)
    torch.manual_seed(seed)
    model = EncoderClassifier(config, n_classes)
    model.set_input_scaling(images)
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scaler = precision.scaler()
    loss_fn = nn.CrossEntropyLoss()
    targets_t = torch.as_tensor(targets, dtype=torch.long)
    model.train()
    for epoch in range(epochs):
        epoch_seed = _seed(seed, epoch)
        generator = torch.Generator().manual_seed(epoch_seed)
        for batch in make_batches(np.arange(len(images)), batch_size, shuffle=True, seed=epoch_seed):
            x = to_float(torch.from_numpy(np.ascontiguousarray(images[batch])), device)
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
def predict(model: EncoderClassifier, images: np.ndarray, device, batch_size: int = 256,
            precision: Precision | None = None) -> np.ndarray:
    """Predicted class index of every uint8 image."""
    device = torch.device(device)
    precision = precision or pick_precision(device)
    out = []
    for start in range(0, len(images), batch_size):
        x = to_float(torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size])), device)
        with precision.autocast():
            out.append(model(x).float().argmax(1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=int)


def cross_validate_cnn(images: np.ndarray, labels: np.ndarray, splits, config: VAEConfig, device,
                       epochs: int = 10, batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
                       classes: list | None = None, progress: bool = False) -> dict:
    """Scores of the supervised CNN on the given (train, test) splits, like ``classify.cross_validate``.

    images: uint8 (N, 3, S, S) (e.g. ``cache[image_index]``), labels: N class labels.
    """
    from tqdm import tqdm

    labels = np.asarray(labels)
    classes = sorted(np.unique(labels)) if classes is None else list(classes)
    code = {c: i for i, c in enumerate(classes)}
    targets = np.array([code[c] for c in labels])
    images = np.asarray(images)
    truths, predictions = [], []
    for fold, (train, test) in enumerate(tqdm(splits, desc="CNN folds", unit="fold", disable=not progress, leave=False)):
        model = train_classifier(images[train], targets[train], len(classes), config, device, epochs, batch_size,
                                 lr, _seed(seed, fold))
        truths.append(labels[test])
        predictions.append(np.asarray(classes, dtype=object)[predict(model, images[test], device)])
    return summarise_folds(truths, predictions, classes)
