"""The embedded default data: a mock DECaLS / BASS+MzLS galaxy survey rendered with GalSim.

Modules (one concern each):
  surveys  survey constants: footprints, PSF and depth per survey and band, artefact kinds
  scene    the sky around one galaxy before any survey sees it (GalSim profiles per band)
  effects  what a survey does to it: PSF, resampling, noise, colour terms, defects, artefacts
  votes    Galaxy Zoo DECaLS style volunteer votes per survey image
  build    build_mock_survey / mock_is_current: render every galaxy, write cutouts and tables
  plots    the examples figure

The public API is re-exported here: ``from VAE_model.mock import build_mock_survey``.
"""
from .build import build_mock_survey, galaxy_streams, mock_is_current, render_galaxy, sky_positions
from .effects import add_defect, add_north_artefact, draw_survey_image, resample_to_brick_grid
from .plots import rgb_composite, save_examples_png
from .scene import band_factors, build_scene, draw_galaxy_params
from .surveys import (BASS, BASS_MIN_DEC_DEG, DECALS, DEFAULT_DEFECT_FRACTION, DEFAULT_GAP, DEFAULT_NORTH_FRACTION,
                      DEFECT_KINDS, MAX_GAP, MOCK_VERSION, MORPH_TYPES, NORTH_ARTEFACT_KINDS, SURVEYS, SurveySpec,
                      check_gap)
from .votes import draw_votes, vote_probabilities

__all__ = ["BASS", "BASS_MIN_DEC_DEG", "DECALS", "DEFAULT_DEFECT_FRACTION", "DEFAULT_GAP", "DEFAULT_NORTH_FRACTION",
           "DEFECT_KINDS", "MAX_GAP", "MOCK_VERSION", "MORPH_TYPES", "NORTH_ARTEFACT_KINDS", "SURVEYS", "SurveySpec",
           "add_defect", "add_north_artefact", "check_gap", "resample_to_brick_grid", "band_factors", "build_mock_survey", "build_scene",
           "draw_galaxy_params", "draw_survey_image", "draw_votes", "galaxy_streams", "mock_is_current",
           "render_galaxy", "rgb_composite", "save_examples_png", "sky_positions", "vote_probabilities"]
