"""X-ray angiography (XA) DICOM, one module per job.

- :mod:`.elements`: opening a file, converting every element up front (a broken value
  fails with its tag named), transfer syntax and Image Pixel header checks.
- :mod:`.pixels`: decoding frames and mapping stored values onto [0, 1].
- :mod:`.frame_selection`: which frame of a run to use (strongest vessel contrast).
- :mod:`.geometry_tags`: C-arm angles, distances and pixel spacing from the tags, with
  provenance (GEOMETRY.md).
- :mod:`.reader`: :func:`~.reader.read_xa` and :func:`~.reader.read_xa_frames`, built
  from the four above.
- :mod:`.writer`: :func:`~.writer.write_xa`, X-Ray Angiographic Image Storage files that
  read back unchanged (the synthetic data engine uses it).

Data flows one way: ``reader -> frame_selection -> pixels -> elements`` and
``reader -> geometry_tags -> elements``; ``writer`` needs only ``elements``. The older
single module :mod:`angio_deploy.io.dicom_xa` re-exports the public names.
"""
