"""Synthetic angiography engine: anatomy, C-arm views, X-ray image formation, truth.

Entry points: :func:`angio_deploy.synth.engine.generate_case` (one case in memory),
:func:`~angio_deploy.synth.engine.write_case` and
:func:`~angio_deploy.synth.engine.synthesise` (case folders per CASE_FORMAT.md).
Splits are seed ranges, see :mod:`angio_deploy.synth.splits` and docs/DATASET.md.
"""
