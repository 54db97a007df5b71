"""From checks to a verdict a person can act on.

``requirements`` (the bounds: defaults, a team's overrides), ``judge`` (a failed check
during a stall of the runner or the machine is inconclusive, not a fail) and ``advice``
(which client settings answer a failed check: "What to change").
"""
