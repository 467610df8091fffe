"""Pipeline stages of the reconstruction (mesh initialisation, surface refinement)."""
