"""The scenario catalogue: one file per family of faults (kill, hang, network, TLS, DNS,
health, balance, latency, app errors, rollout, claims) and the fuzz corpus.

Run from a clone as ``pytest scenarios/``; installed (the wheel carries it as
``chaos.catalogue``) as ``pytest --pyargs chaos.catalogue``. Each scenario names the property
it proves in its docstring and judges it with checks whose bounds are requirements.
"""
