"""Process helpers shared by the fleet and everything that starts child processes.

``lifeline`` (children die with their parent: PR_SET_PDEATHSIG, interrupt handling),
``reaper`` (stop a process group: SIGTERM, then SIGKILL after a grace) and ``waiting``
(wait for a condition with a deadline, never a bare sleep).
"""
