"""Repository-wide pytest configuration.

The grpc-chaos plugin itself is registered through the ``pytest11`` entry point (see
pyproject.toml); this file only makes the repository root importable for ``tests.helpers``
when pytest is started as a bare ``pytest`` rather than ``python -m pytest``.
"""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
