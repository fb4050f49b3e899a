"""Galaxy_VAE shared package: model, data, catalogs, mock survey and the run-directory layout."""
