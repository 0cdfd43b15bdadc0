"""Tsunagu's domain: process definitions, cases, human tasks, timers and access rules.

Nothing in this package knows about HTTP. One package per concern: `workflow` (definitions and
their execution), `casework` (commands, queries and the one write path), `security` (who may do
what, and the audit trail), `reports` (what supervisors and the city read), `ops` (running the
system); the modules at this level are the kernel all of them share.
"""
