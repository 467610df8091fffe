"""Names of the synthetic engine's generator versions (no heavy imports: the CLI parser
reads them). Their distributions are :mod:`angio_deploy.synth.profiles`."""

from __future__ import annotations

#: Default generator version: the test split and every number in docs/ are version 1.
GENERATOR_VERSION = "1"
#: The versions a caller may ask for, oldest first.
GENERATOR_VERSIONS: tuple[str, ...] = ("1", "2")
