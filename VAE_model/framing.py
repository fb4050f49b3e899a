"""Framing: the square crop of a cutout that the loader keeps before resizing, so the network sees
the galaxy rather than the sky around it.

Galaxy Zoo 2 / SDSS style JPEGs show the galaxy small in a large frame (Galaxy Zoo 2 drew every
424 px image at 0.02 x petroR90_r arcsec/pixel, Willett et al. 2013, MNRAS 435, 2835, so the
galaxy's R90 is 50 px of 424 and, at 64 px, a spiral is ~12 px across). Four modes
(``make_datatxt.py --frame``):

- ``none``     the whole cutout (default; the mock and Legacy Survey cutouts are centred and sized).
- ``center``   the central ``fraction`` of the side (e.g. 0.5 for Galaxy Zoo 2 images: Dieleman,
               Willett & Dambre 2015, MNRAS 450, 1441, cropped the 424 px images to the central
               207 px for the Galaxy Zoo challenge's winning network). Exact geometry: side =
               round(fraction x N), centred on the image centre.
- ``moments``  side = ``k`` x the galaxy's light radius, centred on its light centroid, both from the
               image's own windowed second moments (``light_moments``).
- ``catalog``  side = ``radius_factor`` x a catalog radius (arcsec) / the image's pixel scale,
               centred on the light centroid; a galaxy without a catalog value is framed by its
               moments (and counted).

**Light radius** (``light_moments``): adaptive moments (Bernstein & Jarvis 2002, AJ 123, 583) of the
summed g + r + z light of the image the network sees (stretched to [0, 1]), sky (the median of a
border 10% of the side wide) subtracted: a circular Gaussian window is re-centred on the weighted
centroid and its width matched to the light (window sigma^2 = the mean of the window-deconvolved
variances, sigma_i^2 = m_i s^2 / (s^2 - m_i) for the weighted variances m_i along the two principal
axes, exact for a Gaussian galaxy). The light radius is the deconvolved sigma along the MAJOR axis,
so an edge-on disc is framed along its length, not cut at its tips. For a Gaussian galaxy it is its
sigma; for an exponential disc of scale length h (round) it is 1.16 h, i.e. R50 = 1.44 and
R90 = 3.35 light radii (measured with this function on a noiseless disc).

**Why k = 6** (``MOMENTS_SIDE_FACTOR``): the crop's half-side is then 3 light radii, which holds a
Gaussian galaxy to 3 sigma (99% of its light) and an exponential disc to 0.9 R90 (about 90% of its
light; what lies beyond is at the sky level of a 64 px image), and puts the light radius at 1/6 =
0.17 of the side. The mock DECaLS cutouts the VAE is tuned on sit a little tighter (light radius
0.22 of the side, median; 10-90%: 0.16-0.29; `python -m VAE_model.framing data/mock/decals` on the
demo mock's first 200 64 px cutouts) and Galaxy Zoo 2 frames
much looser (R90 = 50 px of 424 = 0.12 of the side: a disc's light radius is 0.035 of the side);
a tighter k would cut the outskirts of discs (k = 4.6, the mock's fill, keeps only 0.7 R90),
a looser one gives the pixels back to the sky.

**Catalog radius**: ``radius_factor`` defaults to k x 1.44 ~ 8.6 (``CATALOG_SIDE_FACTOR``), the same
fill as ``moments`` for an exponential disc when the column is a half-light radius (SDSS
``petroR50_r``, NSA ``PETROTH50``, in arcsec); for an R90 column (Galaxy Zoo 2's ``petroR90_r``) use ``--frame-radius-factor`` 1.8 (= 6 / 3.35).
Pixel scale: the image's own (FITS WCS or PIXSCALE, images.csv ``pixel_scale_arcsec``), else
``pixel_scale_arcsec`` of the framing (``--frame-pixel-scale``; default the native Legacy Survey
0.262"/px that the run takes for images without a scale).

**Boxes**: a crop box is (centre x, centre y, side) in the native pixels of the cutout as the loader
holds it (x = column, y = row counted from the bottom: the FITS orientation; a JPEG's rows are
flipped to it), the side an integer >= ``MIN_SIDE_PX`` and <= the image side; a box reaching past the
edge is shifted inside (the side, i.e. the scale, is kept). A crop smaller than the training size is
interpolated up by the resize. make_datatxt records each image's box in RUN/images.csv
(crop_x_px, crop_y_px, crop_side_px, frame_source) and the framing in the run's records; the
decode-once cache (data.image_cache) reads them through ``readers.read_framing`` so every later
stage sees the same framed image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .errors import GalaxyVAEError

FRAME_MODES = ("none", "center", "moments", "catalog")
MOMENTS_SIDE_FACTOR = 6.0          # crop side / light radius (see the module docstring)
EXP_DISC_R50_PER_LIGHT_RADIUS = 1.44   # R50 / light radius of a round exponential disc (light_moments)
CATALOG_SIDE_FACTOR = round(MOMENTS_SIDE_FACTOR * EXP_DISC_R50_PER_LIGHT_RADIUS, 1)   # 8.6 x a half-light radius
MIN_SIDE_PX = 8                    # a smaller box is a star or noise, not a galaxy to frame
SKY_BORDER_FRACTION = 0.1          # border width (fraction of the side) whose median is the sky level
MAX_ITERATIONS = 50
START_WINDOW_FRACTION = 0.125      # first window sigma / image side (cutouts are centred on their target)


class FramingError(GalaxyVAEError, ValueError):
    """Bad framing input (a fraction outside (0, 1], a catalog column missing or not numeric); one line."""


@dataclass(frozen=True)
class CropBox:
    """A square crop in native pixels: centre (x = column, y = row from the bottom), integer side."""
    x: float
    y: float
    side: int

    def bounds(self, shape) -> tuple[int, int, int, int]:
        """(row0, row1, col0, col1) of the box in an array of ``shape`` (..., H, W)."""
        x0 = int(round(self.x - (self.side - 1) / 2))
        y0 = int(round(self.y - (self.side - 1) / 2))
        return y0, y0 + self.side, x0, x0 + self.side


@dataclass(frozen=True)
class Framing:
    """How a run frames its cutouts (make_datatxt's --frame flags); ``settings()`` is what the records keep.

    ``radius_arcsec``: the catalog radius of ONE image (catalog mode), set per image by make_datatxt;
    not a setting of the run."""
    mode: str = "none"
    fraction: float = 1.0                 # center: kept fraction of the side
    k: float = MOMENTS_SIDE_FACTOR        # moments: side / light radius
    radius_column: str = ""               # catalog: the column (arcsec)
    radius_factor: float = CATALOG_SIDE_FACTOR   # catalog: side / catalog radius
    pixel_scale_arcsec: float = 0.262     # catalog: scale of images with none of their own (native Legacy Survey)
    radius_arcsec: float = float("nan")

    def __post_init__(self):
        if self.mode not in FRAME_MODES:
            raise FramingError(f"--frame {self.mode}: unknown mode (one of {', '.join(FRAME_MODES)})")
        check_fraction(self.fraction)
        for name in ("k", "radius_factor", "pixel_scale_arcsec"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise FramingError(f"framing {name} must be a positive number, got {value}")

    @property
    def active(self) -> bool:
        return self.mode != "none"

    def settings(self) -> dict:
        """The run's framing as the records keep it (only the parameters its mode uses)."""
        keep = {"none": (), "center": ("fraction",), "moments": ("k",),
                "catalog": ("radius_column", "radius_factor", "pixel_scale_arcsec", "k")}[self.mode]
        return {"mode": self.mode, **{name: getattr(self, name) for name in keep}}

    @classmethod
    def from_settings(cls, settings: dict | None) -> "Framing":
        known = {k: v for k, v in (settings or {}).items() if k in cls.__dataclass_fields__ and k != "radius_arcsec"}
        return cls(**known)

    def to_json(self) -> str:
        """The settings as VAEConfig.framing keeps them ("" when nothing is framed)."""
        import json

        return json.dumps(self.settings(), sort_keys=True) if self.active else ""

    @classmethod
    def from_json(cls, text: str) -> "Framing":
        import json

        return cls.from_settings(json.loads(text)) if text else cls()

    def for_image(self, radius_arcsec: float | None) -> "Framing":
        """This framing with one image's catalog radius (NaN: none, framed by its moments)."""
        return replace(self, radius_arcsec=float("nan") if radius_arcsec is None else float(radius_arcsec))


def check_fraction(fraction: float) -> float:
    if not (isinstance(fraction, (int, float)) and math.isfinite(fraction) and 0.0 < fraction <= 1.0):
        raise FramingError(f"--frame-fraction {fraction}: must lie in (0, 1] (the kept fraction of the image side)")
    return float(fraction)


@dataclass
class LightMoments:
    """Adaptive moments of a galaxy's light (pixels; x = column, y = row of the array)."""
    x: float
    y: float
    radius: float            # light radius: deconvolved sigma along the major axis
    minor: float             # deconvolved sigma along the minor axis
    iterations: int


def light_moments(image: np.ndarray) -> LightMoments | None:
    """Windowed, sky-subtracted adaptive moments of the summed light of ``image`` (C, H, W) or (H, W);
    None when there is no positive light to measure (a blank or sky-only image). See the module docstring."""
    light = np.asarray(image, dtype=np.float64)
    light = light.sum(axis=0) if light.ndim == 3 else light
    height, width = light.shape
    border = max(1, int(round(SKY_BORDER_FRACTION * min(height, width))))
    ring = np.concatenate([light[:border].ravel(), light[-border:].ravel(),
                           light[border:-border, :border].ravel(), light[border:-border, -border:].ravel()])
    light = light - np.median(ring)
    y, x = np.mgrid[:height, :width].astype(np.float64)
    cx, cy, s = (width - 1) / 2, (height - 1) / 2, START_WINDOW_FRACTION * min(height, width)
    sigma2 = np.array([s * s, s * s])
    for iteration in range(1, MAX_ITERATIONS + 1):
        weight = light * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))
        total = weight.sum()
        if not total > 0:
            return None
        new_x, new_y = (weight * x).sum() / total, (weight * y).sum() / total
        u, v = x - new_x, y - new_y
        mxx, myy, mxy = (weight * u * u).sum() / total, (weight * v * v).sum() / total, (weight * u * v).sum() / total
        measured = np.linalg.eigvalsh(np.array([[mxx, mxy], [mxy, myy]]))
        # a weighted variance can only approach the window's own s^2 (an infinitely wide source):
        # the clip keeps the deconvolution finite; the floor keeps a point source at a finite size
        measured = np.clip(measured, 0.05, 0.9 * s * s)
        sigma2 = measured * s * s / (s * s - measured)
        new_s = float(np.sqrt(sigma2.mean()))
        converged = abs(new_s - s) < 1e-3 * s and math.hypot(new_x - cx, new_y - cy) < 1e-2
        cx, cy, s = float(new_x), float(new_y), new_s
        if converged:
            break
    return LightMoments(cx, cy, float(np.sqrt(sigma2.max())), float(np.sqrt(sigma2.min())), iteration)


def _clipped_box(x: float, y: float, side: float, shape) -> CropBox:
    """A box of ``side`` (rounded, >= MIN_SIDE_PX, <= the image) centred at (x, y), shifted inside the image."""
    height, width = shape[-2], shape[-1]
    side = int(min(max(int(round(side)), MIN_SIDE_PX), height, width))
    half = (side - 1) / 2
    # integer corner (pixel-aligned box), then shifted so it lies inside the image
    x0 = min(max(int(round(x - half)), 0), width - side)
    y0 = min(max(int(round(y - half)), 0), height - side)
    return CropBox(x0 + half, y0 + half, side)


def frame_box(image: np.ndarray, framing: Framing, pixel_scale_arcsec: float = float("nan")) -> tuple[CropBox | None, str, float]:
    """(box, source, light radius px) of one image (C, H, W) as the network sees it, before resizing.

    source: the mode that made the box ('center', 'moments', 'catalog', or 'moments_fallback' for a
    catalog galaxy without a radius, or 'whole_image' when the light cannot be measured); the box is
    None for mode 'none'. The light radius is NaN unless moments were measured."""
    shape = image.shape
    if framing.mode == "none":
        return None, "none", float("nan")
    if framing.mode == "center":
        side = int(round(framing.fraction * min(shape[-2:])))
        return _clipped_box((shape[-1] - 1) / 2, (shape[-2] - 1) / 2, side, shape), "center", float("nan")
    moments = light_moments(image)
    if moments is None:
        return CropBox((shape[-1] - 1) / 2, (shape[-2] - 1) / 2, int(min(shape[-2:]))), "whole_image", float("nan")
    if framing.mode == "catalog" and math.isfinite(framing.radius_arcsec) and framing.radius_arcsec > 0:
        scale = pixel_scale_arcsec if math.isfinite(pixel_scale_arcsec) and pixel_scale_arcsec > 0 \
            else framing.pixel_scale_arcsec
        side = framing.radius_factor * framing.radius_arcsec / scale
        return _clipped_box(moments.x, moments.y, side, shape), "catalog", moments.radius
    source = "moments_fallback" if framing.mode == "catalog" else "moments"
    return _clipped_box(moments.x, moments.y, framing.k * moments.radius, shape), source, moments.radius


def crop(image: np.ndarray, box: CropBox | None) -> np.ndarray:
    """The box's pixels of ``image`` (C, H, W); the whole image for None. A box outside the image
    (recorded for another file) is refused by the caller's ImageError."""
    if box is None:
        return image
    row0, row1, col0, col1 = box.bounds(image.shape)
    if row0 < 0 or col0 < 0 or row1 > image.shape[-2] or col1 > image.shape[-1] or box.side < 1:
        raise ValueError(f"crop box (x {box.x}, y {box.y}, side {box.side}) lies outside the "
                         f"{image.shape[-1]}x{image.shape[-2]} image")
    return image[..., row0:row1, col0:col1]


def frame_fill(paths, framing: Framing, image_size: int = 64) -> dict:
    """How much of the frame the galaxies fill before and after ``framing``: the light radius
    (``light_moments``) of each loaded image at ``image_size`` as a fraction of its side, whole cutout
    vs framed; percentiles 10/50/90 and the share of crops clipped to the whole image."""
    from .imageio import ImageError, load_image

    before, after, whole, n_bad = [], [], 0, 0
    for path in paths:
        try:
            native = load_image(path, None)
        except ImageError:
            n_bad += 1
            continue
        box, _, _ = frame_box(native, framing)
        whole += int(box is None or box.side >= min(native.shape[-2:]))
        for image, out in ((load_image(path, image_size), before), (load_image(path, image_size, frame=box), after)):
            moments = light_moments(image)
            out.append(moments.radius / image_size if moments else float("nan"))

    def spread(values):
        return {f"p{q}": round(float(np.nanpercentile(values, q)), 4) for q in (10, 50, 90)}

    return {"n_images": len(before), "n_unreadable": n_bad, "framing": framing.settings(), "image_size": image_size,
            "light_radius_fraction_before": spread(before), "light_radius_fraction_after": spread(after),
            "share_kept_whole": round(whole / max(1, len(before)), 4)}


def main(argv=None) -> int:
    """``python -m VAE_model.framing FOLDER``: the fill before/after framing of the first --n images, as JSON."""
    import argparse
    import json
    import sys

    from .cli_args import cli_main
    from .image_scan import find_images

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("folder")
    parser.add_argument("--n", type=int, default=200, help="images measured, the first in name order (default: %(default)s)")
    parser.add_argument("--frame", choices=FRAME_MODES[:3], default="moments")
    parser.add_argument("--frame-fraction", type=float, default=0.5)
    parser.add_argument("--frame-k", type=float, default=MOMENTS_SIDE_FACTOR)
    parser.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args(argv)

    @cli_main
    def run(_):
        found, _ = find_images(args.folder)
        framing = Framing(args.frame, fraction=args.frame_fraction, k=args.frame_k)
        print(json.dumps(frame_fill(found[: args.n], framing, args.image_size), indent=1))
        return 0

    return run(None)


if __name__ == "__main__":
    # through the package, so the loader and this command share one CropBox class (not __main__'s)
    from VAE_model.framing import main as package_main

    raise SystemExit(package_main())


__all__ = ["frame_fill", "FRAME_MODES", "MOMENTS_SIDE_FACTOR", "CATALOG_SIDE_FACTOR", "CropBox", "Framing", "FramingError",
           "LightMoments", "light_moments", "frame_box", "crop", "check_fraction"]
