"""Part II: domain adaptation DECaLS -> BASS+MzLS (stage scripts; run from the repository root)."""
