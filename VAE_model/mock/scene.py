"""The sky around one mock galaxy before any survey sees it: GalSim profiles per band.

Morphologies (``morph_type``): smooth (round, in-between, cigar), edge-on disks (bulge, dust
lane), spirals (2-4 arms, tight/medium/loose, bars, bulges), mergers with tidal tails, clumpy
irregulars; plus companions, background galaxies and stars.

READS / WRITES nothing (pure functions of the random streams they are given).
"""
from __future__ import annotations

import math

import numpy as np

from ..imageio import BANDS, PIXEL_SCALE_ARCSEC
from .surveys import MORPH_TYPES, REFERENCE_IMAGE_SIZE, ZERO_POINT_MAG

# Sersic profiles are cut at one of these multiples of the half-light radius: the smallest that
# puts the (visible) cut beyond the stamp corner for the main galaxy, 4.5 for small components.
# Keeps GalSim FFTs small; GalSim builds one lookup table per (n, cut), so n and the cut are quantised.
SERSIC_TRUNCATION_HLR = (4.5, 6.0, 8.0, 11.0)
STAMP_CORNER = 0.72                    # stamp half-diagonal (0.707) in stamp widths, plus a little
BACKGROUND_GRID_MIN = 6                # from this many background galaxies on, draw them as one grid per band
BACKGROUND_PATCH_PX = 24               # half-size of a background galaxy's patch: > 6 x the largest r_half (0.9")
ELLIPTICAL_SERSIC_N = (2.5, 3.0, 4.0, 5.0)
BULGE_SERSIC_N = (1.5, 2.0, 2.5, 3.0, 4.0)
PITCH_ANGLE_DEG = {"tight": (11.0, 15.0), "medium": (18.0, 24.0), "loose": (28.0, 40.0)}
BULGE_FRACTION = {"none": (0.0, 0.0), "small": (0.05, 0.12), "moderate": (0.15, 0.3), "large": (0.35, 0.6)}
BAR_FRACTION = {"none": (0.0, 0.0), "weak": (0.08, 0.14), "strong": (0.22, 0.32)}
# (g - r, r - z) colours in AB mag, mean and spread: red old populations, blue star formation.
COLOUR_RED = ((0.78, 0.05), (0.45, 0.04))
COLOUR_DISK = ((0.55, 0.07), (0.35, 0.05))
COLOUR_BLUE = ((0.30, 0.08), (0.20, 0.06))


def _colour(rng, kind) -> tuple[float, float]:
    (gr_mean, gr_sd), (rz_mean, rz_sd) = kind
    return float(rng.normal(gr_mean, gr_sd)), float(rng.normal(rz_mean, rz_sd))


def band_factors(g_r: float, r_z: float) -> np.ndarray:
    """Flux in g, r, z relative to r for AB colours g-r and r-z."""
    return np.array([10 ** (-0.4 * g_r), 1.0, 10 ** (0.4 * r_z)])


def draw_galaxy_params(rng, image_size: int) -> dict:
    """Morphology and its parameters (flat truth columns) for one galaxy.

    Sizes scale with the stamp (half-light radius ~0.07-0.22 of the stamp width), and
    magnitudes with it too (r 15-18 at 64 px, brighter by 5 log10(S/64) for larger stamps), so
    surface brightness, hence the look of the stretched cutout, does not depend on image_size.
    """
    width = image_size * PIXEL_SCALE_ARCSEC
    morph = str(rng.choice(MORPH_TYPES))
    p = {"morph_type": morph,
         "mag_r": float(rng.uniform(15.0, 18.0) - 5 * np.log10(image_size / REFERENCE_IMAGE_SIZE)),
         "position_angle_deg": float(rng.uniform(0, 180)),
         "r_half_arcsec": np.nan, "sersic_n": np.nan, "axis_ratio": np.nan, "inclination_deg": np.nan,
         "bulge_size": "", "bulge_fraction": 0.0, "bar": "none", "bar_fraction": 0.0,
         "n_arms": 0, "winding": "", "pitch_angle_deg": np.nan, "arm_strength": 0.0,
         "has_dust_lane": False, "scale_height_ratio": np.nan, "dust_depth": 0.0,
         "merger_stage": "none", "merger_primary": "", "secondary_flux_ratio": np.nan,
         "secondary_separation_arcsec": np.nan, "n_knots": 0}
    if morph.startswith("smooth"):
        q_range = {"smooth_round": (0.8, 1.0), "smooth_inbetween": (0.5, 0.75), "smooth_cigar": (0.22, 0.4)}[morph]
        p.update(r_half_arcsec=float(rng.uniform(0.07, 0.14) * width), sersic_n=float(rng.choice(ELLIPTICAL_SERSIC_N)),
                 axis_ratio=float(rng.uniform(*q_range)))
    elif morph == "edge_on":
        bulge = str(rng.choice(["none", "small", "moderate"], p=[0.4, 0.35, 0.25]))
        dusty = bool(rng.uniform() < 0.6)
        p.update(r_half_arcsec=float(rng.uniform(0.13, 0.2) * width), inclination_deg=float(rng.uniform(84, 90)),
                 bulge_size=bulge, bulge_fraction=float(rng.uniform(*BULGE_FRACTION[bulge])),
                 sersic_n=float(rng.choice(BULGE_SERSIC_N)), has_dust_lane=dusty,
                 # dusty disks are the thicker ones: the lane must be wider than the seeing to show
                 scale_height_ratio=float(rng.uniform(0.12, 0.2) if dusty else rng.uniform(0.07, 0.14)),
                 dust_depth=float(rng.uniform(0.7, 0.95)) if dusty else 0.0)
        p["axis_ratio"] = float(np.hypot(np.cos(np.radians(p["inclination_deg"])), p["scale_height_ratio"] * 1.5))
    elif morph in ("spiral", "barred_spiral"):
        bulge = str(rng.choice(["none", "small", "moderate", "large"], p=[0.2, 0.3, 0.3, 0.2]))
        winding = str(rng.choice(list(PITCH_ANGLE_DEG)))
        bar = str(rng.choice(["weak", "strong"], p=[0.45, 0.55])) if morph == "barred_spiral" else "none"
        inclination = float(np.degrees(np.arccos(rng.uniform(np.cos(np.radians(65)), 1.0))))
        p.update(r_half_arcsec=float(rng.uniform(0.15, 0.23) * width), inclination_deg=inclination,
                 axis_ratio=float(np.cos(np.radians(inclination))),
                 bulge_size=bulge, bulge_fraction=float(rng.uniform(*BULGE_FRACTION[bulge])),
                 sersic_n=float(rng.choice(BULGE_SERSIC_N)), bar=bar, bar_fraction=float(rng.uniform(*BAR_FRACTION[bar])),
                 n_arms=int(rng.choice([2, 3, 4], p=[0.6, 0.25, 0.15])), winding=winding,
                 pitch_angle_deg=float(rng.uniform(*PITCH_ANGLE_DEG[winding])), arm_strength=float(rng.uniform(0.7, 0.95)))
    elif morph == "merger":
        stage = str(rng.choice(["merger", "major_disturbance"], p=[0.7, 0.3]))
        p.update(merger_stage=stage, merger_primary=str(rng.choice(["disk", "elliptical"], p=[0.6, 0.4])),
                 r_half_arcsec=float(rng.uniform(0.08, 0.13) * width),
                 sersic_n=float(rng.choice(BULGE_SERSIC_N + ELLIPTICAL_SERSIC_N[:3])),
                 axis_ratio=float(rng.uniform(0.45, 0.95)))
        if stage == "merger":
            p.update(secondary_flux_ratio=float(rng.uniform(0.35, 1.0)),
                     secondary_separation_arcsec=float(rng.uniform(1.3, 2.6) * p["r_half_arcsec"]))
    else:  # irregular
        p.update(r_half_arcsec=float(rng.uniform(0.1, 0.17) * width), n_knots=int(rng.integers(12, 41)),
                 axis_ratio=float(rng.uniform(0.4, 0.9)))
    return p


def _sersic(n: float, half_light_radius: float, min_truncation_arcsec: float = 0.0):
    """Unit-flux Sersic profile, truncated at a quantised multiple of r_half >= min_truncation_arcsec."""
    import galsim

    if n == 0.5:
        return galsim.Gaussian(half_light_radius=half_light_radius)
    if n == 1.0:
        return galsim.Exponential(half_light_radius=half_light_radius)
    multiple = next((k for k in SERSIC_TRUNCATION_HLR if k * half_light_radius >= min_truncation_arcsec),
                    SERSIC_TRUNCATION_HLR[-1])
    return galsim.Sersic(n, half_light_radius=half_light_radius, trunc=multiple * half_light_radius)


def _to_sky(obj, inclination_deg: float, position_angle_deg: float):
    """Disk-plane profile -> sky: compress by cos(i) along y, rotate by the position angle; flux kept."""
    import galsim

    flux = obj.flux
    cos_i = max(np.cos(np.radians(inclination_deg)), 0.05)
    return obj.transform(1.0, 0.0, 0.0, cos_i).rotate(position_angle_deg * galsim.degrees).withFlux(flux)


def _grid(size_px: int, supersample: int):
    """Sky coordinates (arcsec, x west, y north) of a square grid centred like a GalSim image."""
    n = size_px * supersample
    step = PIXEL_SCALE_ARCSEC / supersample
    axis = (np.arange(n) - (n - 1) / 2) * step
    return np.meshgrid(axis, axis)  # x, y with y along rows, as galsim Image.array


def _interpolated(grid: np.ndarray, supersample: int):
    """Block-average a supersampled grid to the pixel scale and wrap it as a unit-flux GalSim profile."""
    import galsim

    n = grid.shape[0] // supersample
    pixels = grid.reshape(n, supersample, n, supersample).mean(axis=(1, 3))
    return galsim.InterpolatedImage(galsim.Image(np.ascontiguousarray(pixels, dtype=np.float64), scale=PIXEL_SCALE_ARCSEC),
                                    flux=1.0, x_interpolant="quintic")


def spiral_arm_grid(p: dict, scale_radius: float, inner_radius: float, bar_angle_rad: float, chirality: int,
                    sharpness: int, size_px: int, supersample: int = 2) -> tuple[np.ndarray, float]:
    """Arm light of a disk: an exponential disk times a logarithmic-spiral modulation (sky grid).

    I(r, theta) = exp(-r/h) * A(r) * s(phase) / <s>, phase = m (theta - theta0 - ln(r/r0) / tan(pitch)),
    s = ((1 + cos phase) / 2)**k, A(r) = 1 - exp(-(r/r_in)**2) keeps the arms out of the bulge/bar.
    Returns the grid and its flux relative to the unit-central-brightness exponential disk.
    """
    x, y = _grid(size_px, supersample)
    pa = np.radians(p["position_angle_deg"])
    cos_i = max(np.cos(np.radians(p["inclination_deg"])), 0.05)
    u = x * np.cos(pa) + y * np.sin(pa)
    v = (-x * np.sin(pa) + y * np.cos(pa)) / cos_i
    r = np.hypot(u, v) + 1e-6
    theta = np.arctan2(v, u)
    winding = np.log(r / inner_radius) / np.tan(np.radians(p["pitch_angle_deg"]))
    phase = p["n_arms"] * (theta - bar_angle_rad - chirality * winding)
    mean_s = math.comb(2 * sharpness, sharpness) / 4 ** sharpness   # <((1+cos)/2)^k> over a period
    modulation = ((1 + np.cos(phase)) / 2) ** sharpness / mean_s
    grid = np.exp(-r / scale_radius) * (1 - np.exp(-(r / inner_radius) ** 2)) * modulation
    pixel_area = (PIXEL_SCALE_ARCSEC / supersample) ** 2
    # The sky-projected exponential disk of unit central brightness holds 2 pi h^2 cos(i).
    relative_flux = grid.sum() * pixel_area / (2 * np.pi * scale_radius ** 2 * cos_i)
    return grid, float(relative_flux)


def tidal_tail_grid(tails: list[tuple], size_px: int) -> np.ndarray:
    """Curved tidal tails as Gaussian beads along arcs (sky grid at the pixel scale).

    Each tail: (x0, y0, r_start, r_end, phi0, dphi, width0, width1), lengths in arcsec, angles in
    radians; the surface brightness fades as exp(-1.5 t) along the tail.
    """
    x, y = _grid(size_px, 1)
    grid = np.zeros_like(x)
    for x0, y0, r0, r1, phi0, dphi, w0, w1 in tails:
        for t in np.linspace(0, 1, 48):
            radius, phi, width = r0 + (r1 - r0) * t, phi0 + dphi * t, w0 + (w1 - w0) * t
            cx, cy = x0 + radius * np.cos(phi), y0 + radius * np.sin(phi)
            grid += np.exp(-1.5 * t) * np.exp(-0.5 * ((x - cx) ** 2 + (y - cy) ** 2) / width ** 2)
    return grid


def build_scene(p: dict, rng, deviate, image_size: int):
    """The sky around one galaxy before the PSF: one GalSim profile per band (nanomaggies, arcsec).

    Components are (unit-flux profile, flux in g, r, z); the galaxy sits at (0, 0). Companions,
    background galaxies and stars share the stamp as in real cutouts. Also updates ``p`` with the
    integrated colours and returns a dict of scene counts for the truth table.
    """
    import galsim

    width = image_size * PIXEL_SCALE_ARCSEC
    grid_px = image_size + 8                   # margin for the BASS astrometric shift
    flux_total = 10 ** ((ZERO_POINT_MAG - p["mag_r"]) / 2.5)
    pa = p["position_angle_deg"]
    morph = p["morph_type"]
    galaxy: list[tuple] = []                   # (unit-flux profile, flux in g, r, z)

    def add(profile, fraction, colour):
        galaxy.append((profile, fraction * flux_total * band_factors(*colour)))

    if morph.startswith("smooth"):
        profile = _sersic(p["sersic_n"], p["r_half_arcsec"], STAMP_CORNER * width)
        profile = profile.shear(q=p["axis_ratio"], beta=pa * galsim.degrees)
        add(profile, 1.0, _colour(rng, COLOUR_RED))

    elif morph == "edge_on":
        r_half = p["r_half_arcsec"]
        h = r_half / 1.678                     # exponential scale length from the half-light radius
        incl = p["inclination_deg"] * galsim.degrees
        hz = p["scale_height_ratio"]
        disk = galsim.InclinedExponential(incl, scale_radius=h, scale_h_over_r=hz).rotate(pa * galsim.degrees)
        disk_colour = _colour(rng, COLOUR_DISK)
        disk_fraction = 1.0 - p["bulge_fraction"]
        parts = [(disk, disk_fraction * flux_total * band_factors(*disk_colour))]
        if p["bulge_fraction"] > 0:
            bulge = _sersic(p["sersic_n"], r_half * rng.uniform(0.15, 0.25))
            bulge = bulge.shear(q=rng.uniform(0.7, 0.95), beta=pa * galsim.degrees)
            parts.append((bulge, p["bulge_fraction"] * flux_total * band_factors(*_colour(rng, COLOUR_RED))))
        if not p["has_dust_lane"]:
            galaxy.extend(parts)
        else:
            # Dust lane: the mid-plane dust absorbs a fraction `depth` of the light behind it
            # (disk and bulge), more in g and less in z (reddening). The light is drawn on a
            # supersampled grid, multiplied by 1 - depth * lane(v) and handed back as one
            # interpolated profile per band. The lane sits a little off the mid-plane, on the near side.
            supersample = 2
            n_grid = grid_px * supersample
            drawn = [profile.drawImage(nx=n_grid, ny=n_grid, scale=PIXEL_SCALE_ARCSEC / supersample, method="no_pixel").array
                     for profile, _ in parts]
            x, y = _grid(grid_px, supersample)
            v = -x * np.sin(np.radians(pa)) + y * np.cos(np.radians(pa))      # along the minor axis
            lane_sigma = 0.7 * hz * h
            lane = np.exp(-0.5 * ((v - 0.5 * lane_sigma * rng.choice([-1, 1])) / lane_sigma) ** 2)
            depth = np.minimum(p["dust_depth"] * np.array([1.2, 1.0, 0.65]), 0.95)
            for b in range(len(BANDS)):
                light = sum(image * band_flux[b] for image, (_, band_flux) in zip(drawn, parts)) * (1 - depth[b] * lane)
                band_flux = np.zeros(len(BANDS))
                band_flux[b] = light.sum()
                galaxy.append((_interpolated(light, supersample), band_flux))

    elif morph in ("spiral", "barred_spiral"):
        r_half = p["r_half_arcsec"]
        h = r_half / 1.678
        bar_angle = rng.uniform(0, np.pi)
        bulge_r_half = r_half * {"none": 0.15, "small": 0.13, "moderate": 0.2, "large": 0.28}[p["bulge_size"]]
        bar_length = r_half * rng.uniform(0.8, 1.2) if p["bar"] != "none" else 0.0
        inner = max(bar_length, 1.6 * bulge_r_half, 0.5 * h)
        chirality, sharpness = int(rng.choice([-1, 1])), int(rng.choice([3, 4]))
        arms, arm_rel_flux = spiral_arm_grid(p, h, inner, bar_angle, chirality, sharpness, grid_px)
        w = p["arm_strength"]
        # Disk light = (1 - w) smooth exponential + w * arms; the arms carry the young blue stars.
        disk_flux = 1.0 - p["bulge_fraction"] - p["bar_fraction"]
        smooth_share = (1 - w) / ((1 - w) + w * arm_rel_flux)
        smooth = _to_sky(galsim.Exponential(scale_radius=h), p["inclination_deg"], pa)
        add(smooth, disk_flux * smooth_share, _colour(rng, COLOUR_DISK))
        add(_interpolated(arms, 2), disk_flux * (1 - smooth_share), _colour(rng, COLOUR_BLUE))
        if p["bulge_fraction"] > 0:
            bulge = _sersic(p["sersic_n"], bulge_r_half)
            bulge = bulge.shear(q=rng.uniform(0.8, 1.0), beta=rng.uniform(0, np.pi) * galsim.radians)
            add(_to_sky(bulge, p["inclination_deg"] * 0.5, pa), p["bulge_fraction"], _colour(rng, COLOUR_RED))
        if p["bar"] != "none":
            # A bar is a flat elongated Sersic n = 0.5 (Gaussian) component in the disk plane.
            q_bar = rng.uniform(0.15, 0.25)
            bar = galsim.Gaussian(half_light_radius=bar_length * 0.6 * np.sqrt(q_bar))
            bar = bar.shear(q=q_bar, beta=bar_angle * galsim.radians)
            add(_to_sky(bar, p["inclination_deg"], pa), p["bar_fraction"], (0.7, 0.42))

    elif morph == "merger":
        r_half = p["r_half_arcsec"]
        tails = []
        primary_disk = p["merger_primary"] == "disk"
        tail_fraction = rng.uniform(0.18, 0.32)
        body = 1.0 - tail_fraction

        def nucleus(x0, y0, r_h, fraction, disky):
            q = rng.uniform(0.5, 0.95)
            beta = rng.uniform(0, np.pi) * galsim.radians
            # Each body keeps a compact core, so the two nuclei stay distinct in the cutout.
            if disky:
                disk = galsim.Exponential(half_light_radius=r_h).shear(q=q, beta=beta).shift(x0, y0)
                add(disk, 0.55 * fraction, _colour(rng, COLOUR_DISK))
                add(_sersic(2.5, 0.2 * r_h).shift(x0, y0), 0.45 * fraction, _colour(rng, COLOUR_RED))
            else:
                add(_sersic(p["sersic_n"], 0.6 * r_h, STAMP_CORNER * width).shear(q=q, beta=beta).shift(x0, y0), fraction,
                    _colour(rng, COLOUR_RED))
            # Tidal distortion: an offset, sheared, fainter copy makes the body lopsided.
            angle = rng.uniform(0, 2 * np.pi)
            g1, g2 = rng.uniform(-0.4, 0.4), rng.uniform(-0.4, 0.4)
            lopsided = galsim.Exponential(half_light_radius=1.3 * r_h).shear(g1=g1, g2=g2)
            lopsided = lopsided.shift(x0 + 0.5 * r_h * np.cos(angle), y0 + 0.5 * r_h * np.sin(angle))
            add(lopsided, 0.2 * fraction, _colour(rng, COLOUR_DISK))

        sense = rng.choice([-1, 1])
        if p["merger_stage"] == "merger":
            ratio, sep = p["secondary_flux_ratio"], p["secondary_separation_arcsec"]
            angle = rng.uniform(0, 2 * np.pi)
            x2, y2 = sep * np.cos(angle), sep * np.sin(angle)
            share1 = body / (1 + ratio) / 1.2
            nucleus(0.0, 0.0, r_half, share1, primary_disk)
            nucleus(x2, y2, r_half * np.sqrt(ratio) * rng.uniform(0.8, 1.1), share1 * ratio, rng.uniform() < 0.5)
            # Two tails, flung out from each nucleus on opposite sides (Toomre & Toomre 1972).
            for x0, y0, phi0 in ((0.0, 0.0, angle + np.pi), (x2, y2, angle)):
                tails.append((x0, y0, 0.5 * r_half, rng.uniform(2.8, 4.5) * r_half, phi0 + rng.uniform(-0.4, 0.4),
                              sense * rng.uniform(1.0, 2.0), 0.2 * r_half, 0.5 * r_half))
        else:
            nucleus(0.0, 0.0, r_half, body / 1.2, primary_disk)
            phi0 = rng.uniform(0, 2 * np.pi)
            for k in range(int(rng.integers(1, 3))):
                tails.append((0.0, 0.0, 0.6 * r_half, rng.uniform(2.6, 4.2) * r_half, phi0 + k * np.pi,
                              sense * rng.uniform(1.0, 1.8), 0.2 * r_half, 0.5 * r_half))
        add(_interpolated(tidal_tail_grid(tails, grid_px), 1), tail_fraction, _colour(rng, COLOUR_BLUE))

    else:  # irregular: clumps of star formation (RandomKnots) on a lopsided diffuse body
        r_half = p["r_half_arcsec"]
        knot_fraction = rng.uniform(0.45, 0.7)
        # A few giant star-forming clumps plus many small ones, each set lopsided in its own way.
        n_bright = max(3, p["n_knots"] // 4)
        knot_size = rng.uniform(0.15, 0.3) * width / (REFERENCE_IMAGE_SIZE * PIXEL_SCALE_ARCSEC)
        for n_set, share, size in ((n_bright, 0.5, 1.5 * knot_size), (p["n_knots"] - n_bright, 0.5, knot_size)):
            knots = galsim.RandomKnots(n_set, half_light_radius=r_half * rng.uniform(0.7, 1.1), flux=1.0, rng=deviate)
            knots = galsim.Convolve(knots, galsim.Gaussian(sigma=size)).shear(q=p["axis_ratio"], beta=pa * galsim.degrees)
            add(knots.shift(*(rng.uniform(-0.3, 0.3, 2) * r_half)), share * knot_fraction, _colour(rng, COLOUR_BLUE))
        diffuse = galsim.Exponential(half_light_radius=1.2 * r_half).shear(q=p["axis_ratio"], beta=pa * galsim.degrees)
        diffuse = diffuse.shift(*(rng.uniform(-0.25, 0.25, 2) * r_half))
        add(diffuse, 1 - knot_fraction, _colour(rng, COLOUR_DISK))

    # Integrated colour of the galaxy itself.
    fluxes = sum(band_flux for _, band_flux in galaxy)
    p["g_r"] = float(-2.5 * np.log10(fluxes[0] / fluxes[1]))
    p["r_z"] = float(2.5 * np.log10(fluxes[2] / fluxes[1]))

    # Neighbours: a companion sometimes, faint background galaxies and stars (density per area).
    area = (image_size / REFERENCE_IMAGE_SIZE) ** 2
    field: list[tuple] = []
    has_companion = bool(rng.uniform() < 0.2)
    if has_companion:
        distance, angle = rng.uniform(0.28, 0.42) * width, rng.uniform(0, 2 * np.pi)
        profile = _sersic(float(rng.choice([1.0, 2.5, 4.0])), rng.uniform(0.2, 0.45) * p["r_half_arcsec"])
        profile = profile.shear(q=rng.uniform(0.4, 1.0), beta=rng.uniform(0, np.pi) * galsim.radians)
        field.append((profile.shift(distance * np.cos(angle), distance * np.sin(angle)),
                      10 ** ((ZERO_POINT_MAG - p["mag_r"] - rng.uniform(1.5, 3.0)) / 2.5)
                      * band_factors(*_colour(rng, COLOUR_DISK))))
    n_background = min(int(rng.poisson(1.2 * area)), 30)    # ~15 000 per deg2 at r 20-23.5
    background = []
    for _ in range(n_background):
        x0, y0 = rng.uniform(-0.5, 0.5, 2) * width
        profile = _sersic(float(rng.choice([1.0, 4.0])), rng.uniform(0.25, 0.9))
        profile = profile.shear(q=rng.uniform(0.3, 1.0), beta=rng.uniform(0, np.pi) * galsim.radians).shift(x0, y0)
        background.append((profile, 10 ** ((ZERO_POINT_MAG - rng.uniform(20.0, 23.5)) / 2.5)
                           * band_factors(rng.uniform(0.4, 1.6), rng.uniform(0.3, 1.0))))
    if len(background) >= BACKGROUND_GRID_MIN:
        field.extend(_background_grid(background, grid_px))
    else:
        field.extend(background)
    n_stars = min(int(rng.poisson(0.2 * area)), 10)
    for _ in range(n_stars):
        x0, y0 = rng.uniform(-0.55, 0.55, 2) * width
        g_r = rng.uniform(0.3, 1.4)
        field.append((galsim.DeltaFunction().shift(x0, y0),
                      10 ** ((ZERO_POINT_MAG - rng.uniform(16.5, 22.0)) / 2.5) * band_factors(g_r, 0.55 * g_r - 0.05)))

    components = galaxy + field
    bands = []
    for b in range(len(BANDS)):
        bands.append(galsim.Sum([profile * float(band_flux[b]) for profile, band_flux in components if band_flux[b] != 0]))
    info = {"has_companion": has_companion, "n_background_galaxies": n_background, "n_stars": n_stars}
    return bands, info


def _background_grid(sources: list[tuple], grid_px: int) -> list[tuple]:
    """Many small background galaxies -> one interpolated profile per band (speed only).

    Each source is drawn without PSF in real space on a small patch of the grid, so the survey
    draws convolve three profiles instead of dozens of components.
    """
    import galsim

    out = []
    for b in range(len(BANDS)):
        image = galsim.Image(grid_px, grid_px, scale=PIXEL_SCALE_ARCSEC)
        for profile, band_flux in sources:
            cx = image.true_center.x + profile.centroid.x / PIXEL_SCALE_ARCSEC
            cy = image.true_center.y + profile.centroid.y / PIXEL_SCALE_ARCSEC
            radius = BACKGROUND_PATCH_PX
            bounds = galsim.BoundsI(int(cx) - radius, int(cx) + radius, int(cy) - radius, int(cy) + radius) & image.bounds
            if bounds.isDefined():
                (profile * float(band_flux[b])).drawImage(image=image[bounds], add_to_image=True, method="no_pixel",
                                                          center=image.true_center)
        flux = np.zeros(len(BANDS))
        flux[b] = image.array.sum()
        if flux[b] > 0:
            out.append((_interpolated(image.array, 1), flux))
    return out
