"""``grpc-chaos audit``: mutation testing of a client profile, setting by setting.

For each setting of a profile (settings.py), the scenarios whose checks that setting
answers (answers.py, read from the scenarios' ``answers=`` keys) run once with the
profile as given (the baseline) and once with the setting removed (or set to gRPC's
default where removal means nothing); each setting is then *needed*, *no effect seen*,
*not covered* or *inconclusive* (classify.py). cli.py runs it through the gate's pytest
runner (chaos/gate/pytest_run.py); report.py writes audit.json, audit.html and the
terminal table. docs/audit.md describes the command and every field of audit.json.
"""
