"""Tsunagu's domain: process definitions, cases, human tasks, timers and access rules.

Nothing in this package knows about HTTP; the web layer and the CLI call the domain
functions in `engine.cases`, `engine.specs`, `engine.timers` and `engine.users`.
"""
