"""Export tests need the training stack; they skip cleanly without it."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `export/` is a top-level folder, not an installed package
    sys.path.insert(0, str(REPO))
