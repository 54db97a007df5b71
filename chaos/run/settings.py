"""What the plugin decided at start-up for the whole run, kept on pytest's config.

One typed object in ``config.stash`` (pytest's place for a plugin's data) instead of ad hoc
attributes: the profile and client under test, the service under test, the bounds, the fault
families, and the run's state (preflight, stall monitors, reruns).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from chaos.clients.builtin import DriverCommand
    from chaos.profiles import Profile
    from chaos.run.hooks import RunState
    from chaos.targets.model import Target
    from chaos.verdicts.requirements import Requirements


@dataclass
class Settings:
    profile: Profile
    target: Target
    requirements: Requirements
    families: tuple[str, ...]
    state: RunState
    # The client under test: a driver to start (--chaos-client), or None for the grpcio
    # channel the runner makes in its own process.
    client: DriverCommand | None = None


KEY = pytest.StashKey[Settings]()


def of(config: pytest.Config) -> Settings:
    """The run's settings; a KeyError when the plugin did not configure this run."""
    return config.stash[KEY]


def get(config: pytest.Config) -> Settings | None:
    """The run's settings, or None (a run the plugin did not configure)."""
    return config.stash.get(KEY, None)
