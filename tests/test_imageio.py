"""The one image loader reads cutouts as surveys serve them (synthetic files made here):
band cards, WCS positions and pixel scales, byte order, raster colour order and orientation,
16-bit PNGs, resampling to the native scale, and the one colour rendering of the figures."""
import struct
import warnings
import zlib

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from VAE_model.imageio import (
    ImageError,
    header_pixel_scale,
    image_position,
    load_image,
    read_cutout,
    resample_fits,
)
from VAE_model.plots import render_rgb, render_rgb_flux


def _cube(n_planes, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 0.01, (n_planes, size, size)) + np.arange(1, n_planes + 1)[:, None, None]).astype(np.float32)


def _write(path, data, **cards):
    header = fits.Header()
    for key, value in cards.items():
        header[key] = value
    fits.PrimaryHDU(data, header=header).writeto(path)
    return path


def _tan_wcs(size, ra, dec, scale_arcsec, crpix1=None):
    centre = (size + 1) / 2                     # 1-based centre pixel, as in Legacy Survey cutouts
    return dict(CTYPE1="RA---TAN", CTYPE2="DEC--TAN", CRVAL1=ra, CRVAL2=dec, CRPIX1=crpix1 or centre, CRPIX2=centre,
                CD1_1=-scale_arcsec / 3600, CD1_2=0.0, CD2_1=0.0, CD2_2=scale_arcsec / 3600)


def test_g_r_z_are_picked_from_a_griz_cube_and_reordered(tmp_path):
    griz = _cube(4)
    array, info = read_cutout(_write(tmp_path / "griz.fits", griz, BANDS="griz"))
    np.testing.assert_array_equal(array, griz[[0, 1, 3]])
    assert info.bands == "griz" and info.band_source == "cards"
    zrg = _cube(3)
    cards = {"BAND0": "z", "BAND1": "r", "BAND2": "g", "BANDS": "grz"}   # BAND<i> win over BANDS
    array, _ = read_cutout(_write(tmp_path / "zrg.fits", zrg, **cards))
    np.testing.assert_array_equal(array, zrg[[2, 1, 0]])


def test_a_cube_without_z_is_rejected_and_one_without_cards_is_assumed_grz(tmp_path):
    with pytest.raises(ImageError, match=r"gri.fits: no z band among the 3 bands 'gri'") as error:
        read_cutout(_write(tmp_path / "gri.fits", _cube(3), BANDS="gri"))
    assert "\n" not in str(error.value)
    array, info = read_cutout(_write(tmp_path / "plain.fits", _cube(3)))
    assert info.band_source == "assumed" and info.bands == "grz"
    with pytest.raises(ImageError, match="no BANDS/BAND<i> cards"):
        read_cutout(_write(tmp_path / "four.fits", _cube(4)))


def test_position_comes_from_the_wcs_centre_and_falls_back_to_cards(tmp_path):
    size = 33
    path = _write(tmp_path / "wcs.fits", _cube(3, size), BANDS="grz", **_tan_wcs(size, 150.1, 2.2, 0.262))
    ra, dec, source = image_position(path)
    assert source == "wcs" and ra == pytest.approx(150.1, abs=1e-9) and dec == pytest.approx(2.2, abs=1e-9)
    # reference pixel 10 px right of the centre; RA grows to the left (CD1_1 < 0): centre 10 px east of it
    off = _write(tmp_path / "off.fits", _cube(3, size), **_tan_wcs(size, 150.1, 2.2, 0.262, crpix1=27.0))
    ra_off, dec_off, _ = image_position(off)
    expected = 10 * 0.262 / 3600 / np.cos(np.radians(2.2))
    assert ra_off - 150.1 == pytest.approx(expected, rel=1e-3) and dec_off == pytest.approx(2.2, abs=1e-6)
    cards = _write(tmp_path / "cards.fits", _cube(3, size), RA=10.5, DEC=-3.25)
    assert image_position(cards) == (10.5, -3.25, "cards")
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    assert image_position(tmp_path / "x.png")[2] == "none"


def test_pixel_scale_from_wcs_else_pixscale(tmp_path):
    wcs = _write(tmp_path / "a.fits", _cube(3), **_tan_wcs(32, 10, 0, 0.1))
    assert header_pixel_scale(fits.getheader(wcs)) == (pytest.approx(0.1), "wcs")
    card = _write(tmp_path / "b.fits", _cube(3), PIXSCALE=0.262)
    assert header_pixel_scale(fits.getheader(card)) == (pytest.approx(0.262), "PIXSCALE")
    assert header_pixel_scale(fits.getheader(_write(tmp_path / "c.fits", _cube(3))))[1] == "none"


def test_big_endian_float32_is_read_by_value(tmp_path):
    data = _cube(3).astype(">f4")
    path = _write(tmp_path / "be.fits", data, BANDS="grz")
    assert fits.getdata(path).dtype.str == ">f4"
    array, _ = read_cutout(path)
    assert array.dtype == np.float32 and array.dtype.isnative
    np.testing.assert_array_equal(array, data.astype(np.float32))


def test_raster_channels_are_z_r_g_and_rows_are_flipped(tmp_path):
    picture = np.zeros((16, 16, 3), np.uint8)
    picture[0, 0] = (255, 0, 0)      # red pixel at the top-left of the picture (north-east on the sky)
    picture[15, 15] = (0, 0, 200)    # blue pixel at the bottom-right
    Image.fromarray(picture).save(tmp_path / "p.png")
    array, info = read_cutout(tmp_path / "p.png")
    assert info.kind == "raster"
    g, r, z = array
    assert z[15, 0] == 1.0 and z.sum() == 1.0          # top row of the picture = last FITS row
    assert g[0, 15] == pytest.approx(200 / 255) and r.sum() == 0


def _png16(path, pixels):
    """Write a 16-bit PNG (greyscale for (H, W, 1), RGB for (H, W, 3)); Pillow cannot write RGB16."""
    h, w, c = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 16, {1: 0, 3: 2}[c], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def test_16_bit_pngs_are_read_not_clipped_to_white_and_grey_ones_refused(tmp_path):
    grey = np.full((8, 8, 1), 20000, np.uint16)
    grey[0, 0] = 65535
    with pytest.raises(ImageError, match="g16.png: greyscale image"):   # one band is not g, r, z (issue 18)
        read_cutout(_png16(tmp_path / "g16.png", grey))
    rgb = np.zeros((8, 8, 3), np.uint16)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 60000, 30000, 1000           # R = z, G = r, B = g
    array, _ = read_cutout(_png16(tmp_path / "rgb16.png", rgb))
    assert array[2].mean() == pytest.approx(60000 / 65535, abs=1 / 255)
    assert array[1].mean() == pytest.approx(30000 / 65535, abs=1 / 255)
    assert array[0].mean() == pytest.approx(1000 / 65535, abs=1 / 255)


def test_resampling_keeps_centre_and_field_and_sets_the_native_scale(tmp_path):
    size, scale = 100, 0.131
    data = _cube(3, size)
    data[:, :10, :] = 0.0                               # a no-coverage strip stays exactly zero
    src = _write(tmp_path / "fine.fits", data, BANDS="grz", **_tan_wcs(size, 200.0, 45.0, scale))
    info = resample_fits(src, tmp_path / "out" / "fine.fits", 0.262)
    assert info.shape == (3, 50, 50) and info.pixel_scale_arcsec == pytest.approx(0.262)
    assert (info.ra_deg, info.dec_deg) == (pytest.approx(200.0, abs=1e-9), pytest.approx(45.0, abs=1e-9))
    from astropy.wcs import WCS, FITSFixedWarning
    warnings.simplefilter("ignore", FITSFixedWarning)
    old, new = WCS(fits.getheader(src)).celestial, WCS(fits.getheader(tmp_path / "out" / "fine.fits")).celestial
    # the outer pixel edge (-0.5) is the same sky point on both grids
    np.testing.assert_allclose(old.pixel_to_world_values(-0.5, -0.5), new.pixel_to_world_values(-0.5, -0.5), atol=1e-9)
    out, _ = read_cutout(tmp_path / "out" / "fine.fits")
    assert np.all(out[:, :4, :] == 0) and np.all(out[:, 6:, :] != 0)
    assert out[2, 20:30, 20:30].mean() == pytest.approx(3.0, abs=0.01)   # values interpolated, not summed


def test_pixels_without_coverage_are_filled_with_the_sky_level(tmp_path):
    data = np.abs(_cube(3, 64))
    data[0, :5, :] = 0.0
    data[1, 3, 3] = np.nan
    image = load_image(_write(tmp_path / "a.fits", data, BANDS="grz"))
    assert np.isfinite(image).all() and np.all(image[0, :5] == 0) and image[1, 3, 3] == 0


def test_rendering_follows_the_viewer_colours():
    flux = np.zeros((3, 8, 8), np.float32)
    flux[2, :4] = 1.0     # z only: red
    flux[0, 4:] = 1.0     # g only: blue
    rgb = render_rgb_flux(flux)
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0, 0] > 200 > rgb[0, 0, 2] and rgb[7, 0, 2] > 200 > rgb[7, 0, 0]
    stretched = np.clip(np.arcsinh(flux / 0.02) / np.arcsinh(100 / 0.02), 0, 1)
    np.testing.assert_allclose(render_rgb(stretched).astype(int), rgb.astype(int), atol=2)
    np.testing.assert_array_equal(render_rgb((stretched * 255).round().astype(np.uint8)).shape, (8, 8, 3))


def test_tile_compressed_fits_is_read_and_not_taken_for_truncated(tmp_path):
    data = _cube(3, 64)
    header = fits.Header()
    header["BANDS"] = "grz"
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, header=header)]).writeto(tmp_path / "c.fits.fz")
    array, info = read_cutout(tmp_path / "c.fits.fz")
    assert info.band_source == "cards" and array.shape == (3, 64, 64)
    np.testing.assert_allclose(array, data, atol=0.01)   # lossy float quantisation of the tile compression
