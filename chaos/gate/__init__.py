"""The pre-release gate: ``grpc-chaos gate`` runs the scenarios and gives a verdict CI can
act on, a run directory that keeps everything, and a report a person reads.

    cli.py           arguments, checks, the run from start to exit code
    selection.py     paths, families, -m / -k, checked before anything runs
    pytest_run.py    one pytest child per (client, profile, repeat); its results tailed
    plan.py          the pytest plugin that tells the gate what a child selected
    progress.py      a line per finished scenario; the elapsed/ETA bar on a terminal
    aggregate.py     the one aggregation: cells (flaky k/N), figures, verdict, exit code
    baseline.py      figure-by-figure comparison with an earlier run
    results_file.py  results.json (versioned schema, docs/gate.md)
    junit.py         junit.xml with properties
    summary_md.py    summary.md (and $GITHUB_STEP_SUMMARY)
    report_html.py   report.html, self-contained
    plots.py         the plot of one scenario run (matplotlib)
    matrix.py        every scenario under every profile (docs/matrix.md), from run dirs
    report.py        every figure of one or more run directories
    campaign.py      the suite many times beside CPU burners: the zero-flake campaign

Outcomes and exit codes are chaos/outcomes.py's; run directories chaos/rundir.py's.

Importing this package imports nothing else: pytest children load plan.py from here, and
they need neither matplotlib nor the gate.
"""
