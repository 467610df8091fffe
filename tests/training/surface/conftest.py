"""Surface refinement tests need torch (and torch-geometric for the graph network)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
