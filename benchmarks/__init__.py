"""Benchmarks behind `pdcaflow bench engine|timers|inbox|kpis`.

They sit above the three layers: a benchmark may drive `web` (the inbox and dashboard pages through
the Flask test client) as well as `engine` and `storage`, while nothing in `engine` or `storage`
imports them. The CLI imports a benchmark only when its command runs.
"""
