"""One image loader for FITS, PNG and JPG galaxy cutouts, and the FITS cutout writer.

FITS cutouts are the reference format (Legacy Survey cutout service): one image HDU, float32
(any byte order, e.g. big-endian ``>f4``), shape (n_bands, H, W), flux in nanomaggies (AB zero
point 22.5 mag). Every FITS is read as it is served:

- **bands**: the ``BAND<i>`` cards (else ``BANDS``, e.g. ``'grz'``, ``'griz'`` or ``'g,r,z'``) name
  the planes; g, r, z are picked in that order from any superset and a cube in another order is
  reordered. A cube lacking one of g, r, z is rejected. A 3-plane cube without band cards is taken
  as g, r, z (``band_source = 'assumed'``, reported by make_datatxt).
- **position**: the sky position of the centre pixel from the celestial WCS (Legacy Survey
  cutouts carry a TAN WCS: ``CRVAL``, ``CRPIX``, ``CD``; no RA/DEC cards), the ``RA``/``DEC``
  cards as fallback (``image_position``).
- **pixel scale**: from the WCS (``proj_plane_pixel_scales``), else ``PIXSCALE`` (arcsec/pixel).
  The native Legacy Survey pixel is 0.262 arcsec (Dey et al. 2019, AJ 157, 168); Galaxy Zoo DECaLS
  requested cutouts at 0.10-0.14 arcsec/pixel scaled to each galaxy (willettk/decals,
  ``download_images_threaded.py``), so the scale is recorded per image (``ImageInfo``).
- **flux unit**: ``BUNIT``. Legacy Survey images are in nanomaggies (the DR9/DR10 data model,
  https://www.legacysurvey.org/dr10/files/ : coadd ``image`` files are "in nanomaggies"; a
  nanomaggy is 10^-9 of the AB zero-point flux 3631 Jy, i.e. 3.631 microJy). The cutout service
  writes no BUNIT, so a missing card is taken as nanomaggies (``unit_source = 'assumed'``).
  A maggy-family unit (``maggy``, ``nanomaggy``, ``nmgy``) or a spectral flux density (``Jy``,
  ``uJy``, ...) is converted to nanomaggies with ``astropy.units``; any other unit (``ADU``,
  counts, electrons, surface brightness) is refused: the stretch below assumes nanomaggies, and
  ADU with a pedestal would put every pixel at its ceiling. The share of pixels at the ceiling
  of the stretch is recorded (``saturated_fraction``; make_datatxt warns above
  ``SATURATED_WARN_FRACTION``).
- **masked pixels**: NaN/inf, and per band pixels exactly 0.0 (no coverage: a background-
  subtracted sky image has essentially no exact zeros) are counted; the worst band's fraction is
  ``masked_fraction``. Tile-compressed float images (``.fits.fz``, RICE_1 etc.) are quantised
  (FITS tiled-image convention, ZQUANTIZ): sky pixels within half a quantisation step of 0 come
  back as exactly 0 (a third of the sky at quantize level 1), so in quantised data only zeros in
  blocks (kept by a 5x5 binary opening: no-coverage regions are survey edges and gaps, not scattered
  pixels) count as no coverage. Measured on the real cutouts of shared/realdata RICE-compressed by
  astropy: at quantize level 1, 12-32% of the pixels come back as 0 and 0-0.8% survive the opening
  (the 0.10"/px Galaxy Zoo cutouts, whose noise is correlated, are the worst); the half-empty
  ``example_bad_pix`` keeps 0.757 -> 0.748. Truncation of gzip-compressed files (``.fits.gz``) is judged on
  the decompressed stream, not on the compressed size on disk. Up to ``max_masked_fraction`` (default 0.2, the limit Galaxy Zoo DECaLS
  used for "few missing pixels": willettk/decals ``get_download_quality_of_fits(badmax_limit=0.2)``,
  which counts the same exact zeros and NaNs per band) they are filled with 0 flux, the sky
  level of a background-subtracted image (0 after the stretch); above it the cutout is rejected.

Raster cutouts (PNG/JPG) are display renders. Their colour convention is that of the Legacy
Survey viewer and the Galaxy Zoo DECaLS subject images: red = z, green = r, blue = g (band ->
plane maps ``z=(0, ..), r=(1, ..), g=(2, ..)`` in ``dr2_rgb``/``sdss_rgb`` of legacysurvey/imagine
``map/views.py`` and in ``dr2_style_rgb`` of willettk/decals ``get_images/image_utils.py``), so
they are read as (B, G, R) = (g, r, z). Their row 0 is the top of the picture (north up, east
left, as the viewer shows the sky), while FITS row 0 is the bottom (y, and Dec, increase upwards;
the Galaxy Zoo renders were written with ``plt.imsave(..., origin='lower')``), so raster rows are
flipped to the FITS array orientation. 8-bit rasters are scaled by 255, 16-bit ones by 65535.
Greyscale rasters (one plane, or three equal planes) are refused, like a 1-band FITS: they hold no
g, r, z colour.

``load_image`` returns the network input: float32 (3, H, W) in [0, 1]. FITS flux goes
through the fixed asinh stretch below, the same for every galaxy, so surface brightness
differences between galaxies survive (a per-image normalisation would erase them). With a
``frame`` (``VAE_model/framing.py``: a crop box or a framing rule) the stretched image is cropped
to the galaxy before it is resized to the training size.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import GalaxyVAEError
from .files import atomic_write

BANDS = ("g", "r", "z")
PIXEL_SCALE_ARCSEC = 0.262          # native Legacy Survey pixel, arcsec/pixel (Dey et al. 2019)
PIXEL_SCALE_TOLERANCE = 0.05        # relative difference from the native scale that earns a warning
DEFAULT_MAX_MASKED_FRACTION = 0.2   # Galaxy Zoo DECaLS' limit on missing pixels per band (see above)
# longest first: image_stem strips the first that matches (x.fits.fz -> x, never x.fits)
FITS_SUFFIXES = (".fits.fz", ".fits.gz", ".fit.fz", ".fit.gz", ".fts.fz", ".fts.gz", ".fits", ".fit", ".fts", ".fz")
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg")
SATURATED_WARN_FRACTION = 0.05     # share of pixels at the stretch's ceiling (>= ASINH_MAX_NMGY) that earns a warning:
#                                    more than the core of the brightest galaxies covers; wrong units or a pedestal
AB_ZERO_POINT_JY = 3631.0          # 1 maggy (Oke & Gunn 1983 AB system); 1 nanomaggy = 3.631e-6 Jy
GREY_TOLERANCE = 2 / 255           # colour planes closer than 2 levels everywhere: a grey picture saved as RGB
RASTER_PLANE_OF_BAND = {"g": 2, "r": 1, "z": 0}   # RGB plane of each band in viewer / Galaxy Zoo renders

# asinh stretch of nanomaggy flux: x -> asinh(f / soft) / asinh(max / soft), clipped to [0, 1].
# soft ~ a few times the DECaLS pixel noise (~0.005-0.01 nmgy), so the sky sits near 0 and
# faint outskirts stay visible; max ~ the peak of a bright (r ~ 14) galaxy core.
ASINH_SOFTENING_NMGY = 0.02
ASINH_MAX_NMGY = 100.0
STRETCH = {"kind": "asinh", "softening_nmgy": ASINH_SOFTENING_NMGY, "max_nmgy": ASINH_MAX_NMGY}


class ImageError(GalaxyVAEError, ValueError):
    """An unusable image; str() is one line: '<path>: <problem>'."""


@dataclass
class ImageInfo:
    """What the loader learnt about one file (one row of make_datatxt's images.csv)."""
    path: str
    kind: str                          # 'fits' | 'raster'
    shape: tuple                       # as stored: (planes, H, W)
    bands: str                         # bands of the stored planes, e.g. 'grz', 'griz', 'zrg' (raster: 'zrg' = RGB)
    band_source: str                   # 'cards' | 'assumed' (3 planes, no band cards) | 'raster'
    ra_deg: float = float("nan")
    dec_deg: float = float("nan")
    position_source: str = "none"      # 'wcs' | 'cards' | 'none'
    pixel_scale_arcsec: float = float("nan")
    scale_source: str = "none"         # 'wcs' | 'PIXSCALE' | 'none'
    masked_fraction: float = 0.0       # worst band: NaN/inf (+ exact zeros for FITS)
    flux_unit: str = ""                # FITS: BUNIT as read ('' when absent); rasters: ''
    unit_source: str = "none"          # 'BUNIT' | 'assumed' (no BUNIT: Legacy Survey cutouts) | 'none' (raster)
    quantised: bool = False            # tile-compressed float data (lossy): zero sky pixels are not missing coverage
    saturated_fraction: float = 0.0    # share of pixels at the stretch's ceiling (FITS)
    frame_source: str = "none"         # framing.frame_box: 'none' | 'center' | 'moments' | 'catalog' | ...
    crop_x_px: float = float("nan")    # crop box (framing.CropBox): centre column, centre row from the
    crop_y_px: float = float("nan")    #   bottom (FITS orientation) and side, in native pixels
    crop_side_px: float = float("nan")
    light_radius_px: float = float("nan")   # framing.light_moments' radius, native px (moments framing)

    def row(self) -> dict:
        row = asdict(self)
        row["shape"] = "x".join(str(n) for n in self.shape)
        return row


def is_image_file(path: str | Path) -> bool:
    name = str(path).lower()
    return name.endswith(FITS_SUFFIXES) or name.endswith(RASTER_SUFFIXES)


def image_stem(path: str | Path) -> str:
    """The galaxy name of an image path: the file name without its image suffix
    (``J130700.87+284254.1.fits.fz`` -> ``J130700.87+284254.1``). The one path-to-name function:
    name matching, the tables' ``name``/``iauname`` and the resampled copies' names all use it."""
    name = Path(str(path).strip()).name
    for suffix in FITS_SUFFIXES + RASTER_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def is_fits(path: str | Path) -> bool:
    return str(path).lower().endswith(FITS_SUFFIXES)


def asinh_stretch(flux: np.ndarray) -> np.ndarray:
    scaled = np.arcsinh(flux / ASINH_SOFTENING_NMGY) / np.arcsinh(ASINH_MAX_NMGY / ASINH_SOFTENING_NMGY)
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)


def inverse_asinh_stretch(stretched: np.ndarray) -> np.ndarray:
    """Stretched [0, 1] -> flux in nanomaggies (>= 0; negative sky was clipped by the stretch)."""
    scale = np.arcsinh(ASINH_MAX_NMGY / ASINH_SOFTENING_NMGY)
    return (ASINH_SOFTENING_NMGY * np.sinh(np.asarray(stretched, np.float64) * scale)).astype(np.float32)


# ----------------------------------------------------------------------------- FITS header facts
def _first_line(error: Exception) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _image_hdu(hdul):
    """The first HDU holding an image of at least 2 axes (primary, image or tile-compressed)."""
    for hdu in hdul:
        if getattr(hdu, "is_image", False) and hdu.header.get("NAXIS", 0) >= 2:
            return hdu
    return None


def read_header(path: str | Path):
    """astropy Header of the image HDU (the first HDU with an image); ImageError when none."""
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path, memmap=False, lazy_load_hdus=False) as hdul:
                hdu = _image_hdu(hdul)
                if hdu is None:
                    raise ImageError(f"{path}: FITS file holds no image data")
                return hdu.header.copy()
    except ImageError:
        raise
    except Exception as error:
        raise ImageError(f"{path}: unreadable FITS header ({_first_line(error)})") from None


def read_fits_header(path: str | Path) -> dict:
    """The image HDU's header cards as a dict."""
    return dict(read_header(path))


def _celestial_wcs(header):
    from astropy.wcs import WCS, FITSFixedWarning

    if not str(header.get("CTYPE1", "")).strip() and not str(header.get("CTYPE2", "")).strip():
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(header, naxis=2).celestial
    except Exception:  # a malformed WCS: fall back to the cards
        return None
    return wcs if wcs.has_celestial and wcs.naxis == 2 else None


def header_position(header) -> tuple[float, float, str]:
    """(RA, Dec) ICRS degrees of the centre pixel and the source: 'wcs', 'cards' (RA/DEC) or 'none'."""
    wcs = _celestial_wcs(header)
    nx, ny = header.get("NAXIS1"), header.get("NAXIS2")
    if wcs is not None and nx and ny:
        try:
            from astropy.wcs.utils import pixel_to_skycoord

            # 0-based centre pixel ((N-1)/2; CRPIX = (N+1)/2 in Legacy Survey cutouts, 1-based)
            sky = pixel_to_skycoord((nx - 1) / 2.0, (ny - 1) / 2.0, wcs, origin=0).icrs
            if np.isfinite(sky.ra.deg) and np.isfinite(sky.dec.deg):
                return float(sky.ra.deg), float(sky.dec.deg), "wcs"
        except Exception:  # unusable WCS (e.g. unknown frame): fall back to the cards
            pass
    try:
        ra, dec = float(header["RA"]), float(header["DEC"])
        if np.isfinite(ra) and np.isfinite(dec):
            return ra, dec, "cards"
    except (KeyError, TypeError, ValueError):
        pass
    return float("nan"), float("nan"), "none"


def header_pixel_scale(header) -> tuple[float, str]:
    """(arcsec/pixel, source 'wcs' | 'PIXSCALE' | 'none'); the mean of the two axes' scales."""
    wcs = _celestial_wcs(header)
    if wcs is not None:
        from astropy.wcs.utils import proj_plane_pixel_scales

        scales = proj_plane_pixel_scales(wcs) * 3600.0  # deg -> arcsec (celestial axes are in deg)
        if np.all(np.isfinite(scales)) and np.all(scales > 0):
            return float(np.mean(scales)), "wcs"
    try:
        scale = float(header["PIXSCALE"])
        if np.isfinite(scale) and scale > 0:
            return scale, "PIXSCALE"
    except (KeyError, TypeError, ValueError):
        pass
    return float("nan"), "none"


def header_bands(header, n_planes: int) -> tuple[list[str], str]:
    """Band of each stored plane from BAND<i> (else BANDS) and the source ('cards' | 'assumed')."""
    cards = [str(header.get(f"BAND{i}", "")).strip() for i in range(n_planes)]
    if all(cards):
        return [c.lower() for c in cards], "cards"
    value = str(header.get("BANDS", "")).strip().lower()
    if value:
        parts = [p for p in value.replace(",", " ").split() if p]
        bands = parts if len(parts) == n_planes else list(value.replace(",", "").replace(" ", ""))
        if len(bands) == n_planes:
            return bands, "cards"
        raise ImageError(f"BANDS card '{value}' names {len(bands)} bands for {n_planes} image planes")
    if n_planes == len(BANDS):
        return list(BANDS), "assumed"
    raise ImageError(f"{n_planes} image planes and no BANDS/BAND<i> cards to tell which are g, r, z")


def flux_to_nanomaggies(header) -> tuple[float, str, str]:
    """(factor taking the stored values to nanomaggies, BUNIT as read, source 'BUNIT' | 'assumed').

    Raises ImageError for a unit that is not a flux in nanomaggies or convertible to it."""
    import astropy.units as u

    raw = str(header.get("BUNIT", "")).strip()
    if not raw:
        return 1.0, "", "assumed"   # the Legacy Survey cutout service writes no BUNIT: nanomaggies
    spelling = {"nanomaggies": "nanomaggy", "maggies": "maggy"}.get(raw.lower(), raw)
    try:
        unit = u.Unit(spelling, parse_strict="silent")
    except Exception:  # astropy raises several types for strings that are no unit at all
        unit = None
    for target, scale in ((u.nmgy, 1.0), (u.Jy, 1e9 / AB_ZERO_POINT_JY)):
        try:
            return float(unit.to(target)) * scale, raw, "BUNIT"
        except (u.UnitsError, ValueError, TypeError, AttributeError):
            pass
    raise ImageError(f"BUNIT '{raw}' is not a flux in nanomaggies and the header gives no conversion "
                     "(Legacy Survey cutouts are in nanomaggies; ADU or counts with a sky pedestal would saturate the "
                     "stretch): convert the file to nanomaggies")


def image_position(path: str | Path) -> tuple[float, float, str]:
    """(RA, Dec) ICRS degrees of an image's centre and the source ('wcs' | 'cards' | 'none').

    Rasters and unreadable headers give (nan, nan, 'none')."""
    if not is_fits(path):
        return float("nan"), float("nan"), "none"
    try:
        return header_position(read_header(path))
    except ImageError:
        return float("nan"), float("nan"), "none"


# ----------------------------------------------------------------------------- reading
def _declared_end(hdu) -> int | None:
    """Byte offset where the HDU's data ends according to its header (None when unknown)."""
    from astropy.io import fits

    try:
        start = hdu.fileinfo()["datLoc"]
    except Exception:
        return None
    if isinstance(hdu, fits.CompImageHDU):
        # tile-compressed: the stored table of compressed tiles (its rows and heap), not the image size
        table = getattr(hdu, "_bintable", None)
        if table is None:
            return None
        cards = table.header
        return int(start + int(cards.get("NAXIS1", 0)) * int(cards.get("NAXIS2", 0)) + int(cards.get("PCOUNT", 0)))
    count = int(np.prod([hdu.header.get(f"NAXIS{i}", 0) for i in range(1, hdu.header.get("NAXIS", 0) + 1)]))
    return int(start + abs(int(hdu.header.get("BITPIX", 8))) // 8 * count)


def _decompressed_size(path: Path, compression: str) -> int:
    """Bytes of a whole-file-compressed FITS once decompressed (-1: the compressed stream itself is cut)."""
    import bz2
    import gzip
    import lzma

    opener = {"gzip": gzip.open, "bzip2": bz2.open, "lzma": lzma.open}.get(compression)
    if opener is None:
        return -2   # zip and others: left to astropy
    size = 0
    try:
        with opener(path, "rb") as stream:
            while chunk := stream.read(1 << 20):
                size += len(chunk)
    except (EOFError, OSError, lzma.LZMAError):
        return -1
    return size


def _is_quantised(hdu) -> bool:
    """Tile-compressed float data stored quantised (lossy): ZQUANTIZ is absent or not 'NONE'."""
    from astropy.io import fits

    if not isinstance(hdu, fits.CompImageHDU) or int(hdu.header.get("BITPIX", 8)) > 0:
        return False
    table = getattr(hdu, "_bintable", None)
    method = str(table.header.get("ZQUANTIZ", "")) if table is not None else ""
    return method.strip().upper() != "NONE"


def _read_fits_hdu(path: Path) -> tuple[np.ndarray, object, bool]:
    """(data float32, image header, quantised) of a FITS file; truncation judged on decompressed bytes."""
    from astropy.io import fits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy warns "File may have been truncated" before failing
        try:
            hdul = fits.open(path, memmap=False)
        except OSError as error:
            compression = _whole_file_compression(path)
            if compression and _decompressed_size(path, compression) == -1:
                raise ImageError(f"{path}: truncated {compression} stream (the compressed file is cut short); "
                                 "download it again") from None
            raise
        with hdul:
            hdu = _image_hdu(hdul)
            if hdu is None:
                size = path.stat().st_size
                cut = (f" (the file is {size} bytes, not a whole number of 2880-byte FITS blocks: truncated?)"
                       if size % 2880 and not _whole_file_compression(path) else "")
                raise ImageError(f"{path}: FITS file holds no image data{cut}")
            header = hdu.header.copy()
            expected = _declared_end(hdu)
            compression = _whole_file_compression(path)
            size, where = path.stat().st_size, "bytes on disk"
            if compression:   # the header counts decompressed bytes: compare with those
                size, where = _decompressed_size(path, compression), f"bytes once {compression}-decompressed"
                if size == -1:
                    raise ImageError(f"{path}: truncated {compression} stream (the compressed file is cut short); "
                                     "download it again")
            if expected is not None and 0 <= size < expected:
                raise ImageError(f"{path}: truncated FITS ({size} {where}, its header declares "
                                 f"{expected}); download it again")
            data = hdu.data
            if data is None:
                raise ImageError(f"{path}: FITS file holds no image data")
            return np.asarray(data, dtype=np.float32), header, _is_quantised(hdu)  # float32, native byte order


def _whole_file_compression(path: Path) -> str:
    """'gzip' | 'bzip2' | 'lzma' | 'zip' from the file's magic bytes ('' for a plain or tile-compressed FITS)."""
    with open(path, "rb") as handle:
        magic = handle.read(6)
    for prefix, name in ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ", "lzma"), (b"PK\x03\x04", "zip")):
        if magic.startswith(prefix):
            return name
    return ""


def _read_raster(path: Path) -> tuple[np.ndarray, str]:
    """(3, H, W) in [0, 1], planes g, r, z, FITS orientation (row 0 = bottom); and 'raster' | 'grey'."""
    from PIL import Image

    with Image.open(path) as image:
        if image.mode in ("1", "L", "LA", "P;L", "I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
            # one band cannot be g, r and z: refused like a 1-band FITS (training it as g = r = z
            # would teach the VAE colourless galaxies)
            raise ImageError(f"{path}: greyscale image (mode {image.mode}): no g, r, z colour planes; give colour "
                             "renders or the FITS cutout")
        # 16-bit-per-channel RGB PNGs are decoded by Pillow to their 8 most significant bits
        rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    spread = max(float(np.abs(rgb[..., 0] - rgb[..., 1]).max()), float(np.abs(rgb[..., 2] - rgb[..., 1]).max()))
    if spread <= GREY_TOLERANCE:
        raise ImageError(f"{path}: greyscale picture saved as RGB (the three colour planes are equal): no g, r, z "
                         "colour; give colour renders or the FITS cutout")
    planes = np.stack([rgb[:, :, RASTER_PLANE_OF_BAND[b]] for b in BANDS])
    return planes[:, ::-1].copy(), "raster"


def read_cutout(path: str | Path) -> tuple[np.ndarray, ImageInfo]:
    """Read a file as stored, with its facts: (3, H, W) g, r, z (FITS flux in nanomaggies, NaN kept;
    rasters in [0, 1]), flipped/reordered to the FITS convention, and its ``ImageInfo``.

    Raises ImageError naming the file for unreadable, truncated, wrongly shaped or band-less files.
    """
    path = Path(path)
    try:
        if is_fits(path):
            data, header, quantised = _read_fits_hdu(path)
            try:
                to_nmgy, unit, unit_source = flux_to_nanomaggies(header)
            except ImageError as error:
                raise ImageError(f"{path}: {error}") from None
            if to_nmgy != 1.0:
                data = data * np.float32(to_nmgy)
            if data.ndim == 2:
                data = data[None]
            if data.ndim != 3:
                raise ImageError(f"{path}: expected a (bands, H, W) cube, got shape {data.shape}")
            try:
                bands, band_source = header_bands(header, data.shape[0])
            except ImageError as error:
                raise ImageError(f"{path}: {error}") from None
            missing = [b for b in BANDS if b not in bands]
            if missing:
                raise ImageError(f"{path}: no {', '.join(missing)} band among the {len(bands)} bands "
                                 f"'{''.join(bands)}' ({len(BANDS)} bands as (3, H, W) g, r, z needed)")
            array = data[[bands.index(b) for b in BANDS]]
            ra, dec, position_source = header_position(header)
            scale, scale_source = header_pixel_scale(header)
            info = ImageInfo(str(path), "fits", tuple(data.shape), "".join(bands), band_source, ra, dec,
                             position_source, scale, scale_source, flux_unit=unit, unit_source=unit_source,
                             quantised=quantised)
        elif path.name.lower().endswith(RASTER_SUFFIXES):
            array, kind = _read_raster(path)
            info = ImageInfo(str(path), "raster", tuple(array.shape), "zrg", kind)
        else:
            raise ImageError(f"{path}: not a FITS/PNG/JPG file")
    except ImageError:
        raise
    except Exception as error:  # astropy/PIL raise many types for corrupt files
        raise ImageError(f"{path}: unreadable ({_first_line(error)})") from None
    return array, info


def read_raw(path: str | Path) -> np.ndarray:
    """(3, H, W) g, r, z as stored: FITS flux or raster RGB scaled to [0, 1] (see ``read_cutout``)."""
    return read_cutout(path)[0]


# ----------------------------------------------------------------------------- pixel checks
def masked_pixels(array: np.ndarray, flux: bool = True, quantised: bool = False) -> np.ndarray:
    """Boolean (same shape): NaN/inf, and for FITS flux also pixels exactly 0.0 (no coverage).

    ``quantised`` (tile-compressed floats): only zeros in blocks count, since quantisation turns
    faint sky pixels into isolated exact zeros (see the module docstring)."""
    bad = ~np.isfinite(array)
    if not flux:
        return bad
    zero = array == 0.0
    if quantised:
        from scipy import ndimage

        structure = np.zeros((3,) * (zero.ndim - 2) + (5, 5), bool)
        structure[(1,) * (zero.ndim - 2)] = True     # 5x5 in the image plane, never across bands
        zero = ndimage.binary_opening(zero, structure=structure)
    return bad | zero


def check_pixels(path: str | Path, array: np.ndarray, image_size: int | None = None,
                 max_masked_fraction: float = DEFAULT_MAX_MASKED_FRACTION, flux: bool = True,
                 quantised: bool = False) -> np.ndarray:
    """Raise ImageError if the pixels are unusable (too small, blank, too many masked pixels);
    return the mask of pixels to fill (``masked_pixels``)."""
    if image_size is not None and array.shape[1:] != (image_size, image_size):
        if array.shape[1] != array.shape[2] or array.shape[1] < image_size:
            raise ImageError(f"{path}: expected a square cutout of at least {image_size} px, got {array.shape[1]}x{array.shape[2]}")
    finite = np.where(np.isfinite(array), array, 0.0)
    if not np.any(finite):
        raise ImageError(f"{path}: blank image (all pixels zero or non-finite)")
    for band, plane in zip(BANDS, finite):
        if not np.any(plane):
            raise ImageError(f"{path}: band {band} is blank (all zero or non-finite)")
    mask = masked_pixels(array, flux, quantised)
    fractions = mask.reshape(len(BANDS), -1).mean(axis=1)
    worst = int(np.argmax(fractions))
    if fractions[worst] > max_masked_fraction:
        what = "NaN/inf or exactly 0" if flux else "NaN/inf"
        raise ImageError(f"{path}: masked fraction {fractions[worst]:.3f} in band {BANDS[worst]} ({what}, no "
                         f"coverage) > --max-masked-fraction {max_masked_fraction:g}")
    return mask


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


def _frame(path, image: np.ndarray, info: ImageInfo, frame) -> np.ndarray:
    """The framed image (``framing``): ``frame`` is None (whole image), a CropBox (recorded for this
    file) or a Framing (the box measured here); the box and its source go into ``info``."""
    from .framing import CropBox, crop, frame_box

    if frame is None:
        return image
    if isinstance(frame, CropBox):
        box, source, radius = frame, "recorded", float("nan")
    else:
        box, source, radius = frame_box(image, frame, info.pixel_scale_arcsec)
    info.frame_source, info.light_radius_px = source, radius
    if box is None:
        return image
    info.crop_x_px, info.crop_y_px, info.crop_side_px = box.x, box.y, float(box.side)
    try:
        return crop(image, box)
    except ValueError as error:
        raise ImageError(f"{path}: {error} (recorded for another file? re-run make_datatxt.py)") from None


def inspect_image(path: str | Path, image_size: int | None = None,
                  max_masked_fraction: float = DEFAULT_MAX_MASKED_FRACTION, frame=None) -> tuple[np.ndarray, ImageInfo]:
    """Read and check a file: (network input float32 (3, S, S) in [0, 1], its ImageInfo).

    Masked pixels are filled with 0 after the stretch (the sky level of a background-subtracted
    image); their worst-band fraction is ``info.masked_fraction``. ``frame`` (``framing``: None, a
    CropBox or a Framing) crops the stretched image before it is resized to ``image_size``."""
    raw, info = read_cutout(path)
    flux = info.kind == "fits"
    mask = check_pixels(path, raw, image_size, max_masked_fraction, flux=flux, quantised=info.quantised)
    info.masked_fraction = float(mask.reshape(len(BANDS), -1).mean(axis=1).max())
    image = asinh_stretch(np.where(mask, 0.0, raw)) if flux else np.where(mask, 0.0, raw).astype(np.float32)
    if flux:   # before resizing: the share of stored pixels the stretch flattens at its ceiling
        info.saturated_fraction = float(np.mean(image >= 1.0))
    image = _frame(path, image, info, frame)
    if image_size is not None:
        image = resize(np.ascontiguousarray(image), image_size)
    return image, info


def load_image(path: str | Path, image_size: int | None = None,
               max_masked_fraction: float | None = None, frame=None) -> np.ndarray:
    """The one loader: file -> validated network input, float32 (3, S, S) in [0, 1].

    Masked pixels are filled whatever their fraction unless ``max_masked_fraction`` is given: the
    limit is applied where the image list is made (make_datatxt's --max-masked-fraction), so a
    list made with another limit is still decoded as it was accepted. ``frame``: the crop kept
    before resizing (``VAE_model/framing.py``; None: the whole cutout), e.g. the box make_datatxt
    recorded for this file in RUN/images.csv (``readers.read_framing``)."""
    return inspect_image(path, image_size, 1.0 if max_masked_fraction is None else max_masked_fraction, frame)[0]


def _reason(path, error: ImageError) -> str:
    text = str(error)
    return text.split(": ", 1)[-1] if text.startswith(str(path)) else text


def validate_image(path: str | Path, image_size: int | None = None,
                   max_masked_fraction: float = DEFAULT_MAX_MASKED_FRACTION) -> str | None:
    """None if the file is a usable cutout, else the reason (one line, without the path)."""
    try:
        inspect_image(path, image_size, max_masked_fraction)
    except ImageError as error:
        return _reason(path, error)
    return None


def describe_image(path: str | Path, image_size: int | None = None,
                   max_masked_fraction: float = DEFAULT_MAX_MASKED_FRACTION,
                   frame=None) -> tuple[ImageInfo | None, str | None]:
    """(ImageInfo, None) for a usable cutout, else (None, reason without the path); with ``frame``
    the ImageInfo holds the crop box (``framing``)."""
    try:
        return inspect_image(path, image_size, max_masked_fraction, frame)[1], None
    except ImageError as error:
        return None, _reason(path, error)


# ----------------------------------------------------------------------------- pixel scale
def resample_fits(path: str | Path, out_path: str | Path, scale_arcsec: float = PIXEL_SCALE_ARCSEC) -> ImageInfo:
    """Write ``path`` resampled to ``scale_arcsec`` per pixel as a FITS at ``out_path``.

    All stored planes and header cards are kept; the WCS (CD or CDELT, CRPIX), PIXSCALE and
    NAXIS follow the new grid (same sky centre and field of view). Pixel values are interpolated,
    not summed: Legacy Survey cutouts requested at another ``pixscale`` keep the surface-brightness
    units of the native pixel (nanomaggies per 0.262 arcsec pixel: an aperture sum of the same galaxy
    at 0.10 arcsec/px is (0.262/0.10)^2 times larger), so interpolated values stay comparable with
    native cutouts. Interpolation: ``scipy.ndimage.zoom`` (linear, ``grid_mode=True`` so pixel
    edges, not centres, map onto each other), preceded when shrinking by a Gaussian
    anti-aliasing filter of sigma = (1/zoom - 1)/2 input pixels (the choice of
    ``skimage.transform.rescale(anti_aliasing=True)``).
    """
    from astropy.io import fits
    from scipy import ndimage

    path, out_path = Path(path), Path(out_path)
    data, header, quantised = _read_fits_hdu(path)
    cube = data if data.ndim == 3 else data[None]
    scale, source = header_pixel_scale(header)
    if source == "none":
        raise ImageError(f"{path}: no WCS or PIXSCALE card: pixel scale unknown, cannot resample")
    n_in = cube.shape[1:]
    n_out = tuple(max(1, int(round(n * scale / scale_arcsec))) for n in n_in)
    zoom = (n_out[0] / n_in[0], n_out[1] / n_in[1])   # (y, x)
    sigma = [max(0.0, (1 / z - 1) / 2) for z in zoom]

    def regrid(plane):
        if min(zoom) < 1:
            plane = ndimage.gaussian_filter(plane, sigma, mode="nearest")
        return ndimage.zoom(plane, zoom, order=1, mode="nearest", grid_mode=True)

    planes = []
    for plane in cube:
        masked = masked_pixels(plane, quantised=quantised)
        out_plane = regrid(np.where(masked, 0.0, plane))
        # masked (no-coverage) regions stay exactly 0 on the new grid, so they are still counted
        out_plane[regrid(masked.astype(np.float32)) > 0.5] = 0.0
        planes.append(out_plane)
    out = np.stack(planes).astype(np.float32)
    header = header.copy()
    zx, zy = zoom[1], zoom[0]
    for axis, z in ((1, zx), (2, zy)):
        # 1-based pixel coordinate p maps to (p - 0.5) * z + 0.5 when edges map onto edges
        if f"CRPIX{axis}" in header:
            header[f"CRPIX{axis}"] = (header[f"CRPIX{axis}"] - 0.5) * z + 0.5
        if f"CDELT{axis}" in header:
            header[f"CDELT{axis}"] = header[f"CDELT{axis}"] / z
        for j in (1, 2):
            if f"CD{axis}_{j}" in header:
                header[f"CD{axis}_{j}"] = header[f"CD{axis}_{j}"] / z
    header["PIXSCALE"] = (scale * n_in[1] / n_out[1], "arcsec/pixel (resampled)")
    for key in ("IMAGEW", "IMAGEH"):
        if key in header:
            header[key] = float(n_out[1] if key == "IMAGEW" else n_out[0])
    header["HISTORY"] = f"resampled from {scale:.5f} to {header['PIXSCALE']:.5f} arcsec/px by Galaxy_VAE"
    header["HISTORY"] = f"source: {path.name}"
    hdu = fits.PrimaryHDU(out if data.ndim == 3 else out[0], header=header)
    with atomic_write(out_path, "path") as tmp:
        hdu.writeto(tmp, overwrite=True, output_verify="silentfix")
    return read_cutout(out_path)[1]


def write_fits_cutout(path: str | Path, flux_nmgy: np.ndarray, header_cards: dict) -> None:
    """Write a (3, H, W) float32 cutout in nanomaggies with a Legacy-Survey-like header."""
    from astropy.io import fits

    header = fits.Header()
    header["BANDS"] = (",".join(BANDS), "band order of axis 0")
    header["PIXSCALE"] = (PIXEL_SCALE_ARCSEC, "arcsec/pixel")
    header["BUNIT"] = ("nanomaggy", "AB zero point 22.5 mag")
    for key, value in header_cards.items():
        header[key] = value
    with atomic_write(path, "path") as tmp:
        fits.PrimaryHDU(np.asarray(flux_nmgy, dtype=np.float32), header=header).writeto(tmp, overwrite=True)
