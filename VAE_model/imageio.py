"""One image loader for FITS, PNG and JPG galaxy cutouts, and the FITS cutout writer.

FITS cutouts are the reference format (Legacy Survey style): one HDU, float32, shape
(3, H, W) in bands g, r, z, flux in nanomaggies (AB zero point 22.5 mag). PNG/JPG cutouts
are already display-stretched 8-bit RGB (as Galaxy Zoo serves them) and are scaled to [0, 1].

``load_image`` returns the network input: float32 (3, H, W) in [0, 1]. FITS flux goes
through the fixed asinh stretch below, the same for every galaxy, so surface brightness
differences between galaxies survive (a per-image normalisation would erase them).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

BANDS = ("g", "r", "z")
PIXEL_SCALE_ARCSEC = 0.262          # Legacy Survey cutout pixel scale, arcsec/pixel
FITS_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fz")
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg")

# asinh stretch of nanomaggy flux: x -> asinh(f / soft) / asinh(max / soft), clipped to [0, 1].
# soft ~ a few times the DECaLS pixel noise (~0.005-0.01 nmgy), so the sky sits near 0 and
# faint outskirts stay visible; max ~ the peak of a bright (r ~ 14) galaxy core.
ASINH_SOFTENING_NMGY = 0.02
ASINH_MAX_NMGY = 100.0
STRETCH = {"kind": "asinh", "softening_nmgy": ASINH_SOFTENING_NMGY, "max_nmgy": ASINH_MAX_NMGY}


class ImageError(ValueError):
    """An unusable image; str() is one line: '<path>: <problem>'."""


def is_image_file(path: str | Path) -> bool:
    name = str(path).lower()
    return name.endswith(FITS_SUFFIXES) or name.endswith(RASTER_SUFFIXES)


def asinh_stretch(flux: np.ndarray) -> np.ndarray:
    scaled = np.arcsinh(flux / ASINH_SOFTENING_NMGY) / np.arcsinh(ASINH_MAX_NMGY / ASINH_SOFTENING_NMGY)
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)


def read_raw(path: str | Path) -> np.ndarray:
    """Read an image file as stored: FITS flux (3, H, W) or raster RGB scaled to [0, 1] as (3, H, W).

    Raises ImageError naming the file for unreadable, truncated or wrongly shaped files.
    """
    path = Path(path)
    name = path.name.lower()
    try:
        if name.endswith(FITS_SUFFIXES):
            array = _read_fits_data(path)
        elif name.endswith(RASTER_SUFFIXES):
            from PIL import Image

            with Image.open(path) as image:
                array = np.asarray(image.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255.0
        else:
            raise ImageError(f"{path}: not a FITS/PNG/JPG file")
    except ImageError:
        raise
    except Exception as error:  # astropy/PIL raise many types for corrupt files
        raise ImageError(f"{path}: unreadable ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})") from None
    if array.ndim != 3 or array.shape[0] != len(BANDS):
        raise ImageError(f"{path}: expected {len(BANDS)} bands as (3, H, W), got shape {array.shape}")
    return array


def _read_fits_data(path: Path) -> np.ndarray:
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdul:
        for hdu in hdul:
            if hdu.data is not None:
                return np.asarray(hdu.data, dtype=np.float32)
    raise ImageError(f"{path}: FITS file holds no image data")


def check_pixels(path: str | Path, array: np.ndarray, image_size: int | None = None) -> None:
    """Raise ImageError if the pixels are unusable: non-finite, blank, or the wrong size."""
    if image_size is not None and array.shape[1:] != (image_size, image_size):
        if array.shape[1] != array.shape[2] or array.shape[1] < image_size:
            raise ImageError(f"{path}: expected a square cutout of at least {image_size} px, got {array.shape[1]}x{array.shape[2]}")
    bad = ~np.isfinite(array)
    if bad.any():
        raise ImageError(f"{path}: {int(bad.sum())} non-finite (NaN/inf) pixels")
    if not np.any(array):
        raise ImageError(f"{path}: blank image (all pixels zero)")
    for band, plane in zip(BANDS, array):
        if not np.any(plane):
            raise ImageError(f"{path}: band {band} is blank (all zero)")


def resize(array: np.ndarray, image_size: int) -> np.ndarray:
    """Bring a square (3, N, N) image to (3, image_size, image_size).

    Integer down-sampling averages blocks (flux-conserving per unit area, keeps the full field
    of view); other sizes use antialiased bilinear interpolation.
    """
    size = array.shape[1]
    if size == image_size:
        return array
    if size % image_size == 0:
        factor = size // image_size
        return array.reshape(3, image_size, factor, image_size, factor).mean(axis=(2, 4))
    import torch
    import torch.nn.functional as F

    tensor = torch.from_numpy(np.ascontiguousarray(array))[None]
    return F.interpolate(tensor, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)[0].numpy()


def load_image(path: str | Path, image_size: int | None = None) -> np.ndarray:
    """The one loader: file -> validated network input, float32 (3, S, S) in [0, 1]."""
    raw = read_raw(path)
    check_pixels(path, raw, image_size)
    image = asinh_stretch(raw) if str(path).lower().endswith(FITS_SUFFIXES) else raw.astype(np.float32)
    if image_size is not None:
        image = resize(image, image_size)
    return image


def validate_image(path: str | Path, image_size: int | None = None) -> str | None:
    """None if the file is a usable cutout, else the reason (one line, without the path)."""
    try:
        load_image(path, image_size)
    except ImageError as error:
        return str(error).split(": ", 1)[-1] if str(error).startswith(str(path)) else str(error)
    return None


def write_fits_cutout(path: str | Path, flux_nmgy: np.ndarray, header_cards: dict) -> None:
    """Write a (3, H, W) float32 cutout in nanomaggies with a Legacy-Survey-like header."""
    from astropy.io import fits

    header = fits.Header()
    header["BANDS"] = (",".join(BANDS), "band order of axis 0")
    header["PIXSCALE"] = (PIXEL_SCALE_ARCSEC, "arcsec/pixel")
    header["BUNIT"] = ("nanomaggy", "AB zero point 22.5 mag")
    for key, value in header_cards.items():
        header[key] = value
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fits.PrimaryHDU(np.asarray(flux_nmgy, dtype=np.float32), header=header).writeto(tmp, overwrite=True)
    tmp.replace(path)


def read_fits_header(path: str | Path) -> dict:
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdul:
        return dict(hdul[0].header)
