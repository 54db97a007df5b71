"""The pytest run: the plugin and what it does around each scenario.

``plugin`` (options, fixtures, fleets per scenario), ``hooks`` (reruns of inconclusive
verdicts, the verdict text in pytest's report), ``preflight`` (is the client under test
shaped as the catalogue assumes), ``results`` (one JSON line per scenario, read by the gate
and the campaign) and ``artifacts`` (where a scenario's files go).
"""
