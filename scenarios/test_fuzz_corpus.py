"""Fuzz corpus: every failing schedule the fuzzer saved (scenarios/fuzz_corpus/*.json) runs
as a regression scenario with the catalogue.

Each was found failing under some profile (its file says which, with the rule it broke and
the seed); under the profile under test every rule of the fuzz oracle must hold
(docs/fuzzing.md): under ``recommended`` they pass, under the profile that broke them they
fail again. ``grpc-chaos fuzz`` adds the smallest failing schedule of a campaign here when
this directory exists (``--corpus DIR`` elsewhere, ``--no-corpus`` not at all).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.fuzz import Schedule, run_scenario

CORPUS = Path(__file__).parent / "fuzz_corpus"


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.json")), ids=lambda p: p.stem)
def test_fuzz_corpus_schedule_keeps_every_oracle_rule(chaos, path):
    """Property: every rule of the fuzz oracle holds under this saved schedule (the faults
    at their offsets on the ranked backends, under its load): RPCs in flight at a fault and
    RPCs sent after its detection bound succeed while a backend could serve, none starts on
    a backend known down, outages fail fast, the client serves again after the last fault.

    Bound: each rule's requirement (chaos/verdicts/requirements.py): failover_ms, hang_detection_ms,
    drain_ms, ejection_ms for detection; fail_fast_ms; recovery_ms; 0 failed RPCs a client
    could have avoided; the deadline + 250 ms for any RPC.
    """
    run_scenario(chaos, Schedule.read(path))
