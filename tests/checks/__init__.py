"""Unit tests of the history and the checks, on hand-made histories (fast, pure)."""
