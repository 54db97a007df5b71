"""Where a scenario's artifacts go: paths built from sanitized names, never outside the
artifacts directory (a profile named ``../x`` must not write elsewhere)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path


def safe_name(text: str, limit: int = 120) -> str:
    """A file name made from any text: letters, digits, '_', '.', '-' only, never '.' or
    '..' or a leading dot, at most ``limit`` characters, and a short hash of the original
    when anything was changed (so two names that differ only in unsafe characters stay
    apart)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._-")[:limit] or "_"
    if cleaned != text:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        cleaned = f"{cleaned[: limit - 9]}-{digest}"
    return cleaned


def artifact_dir(root: Path, *parts: str) -> Path:
    """``root``/parts..., refusing any path that would end outside ``root``."""
    base = root.resolve()
    path = base.joinpath(*parts).resolve()
    if path != base and base not in path.parents:
        raise ValueError(f"artifact path {path} would be outside {base}")
    return path
