"""Benchmarks, separate from the tests: ``python -m bench.run [--quick]`` (``make bench``).

- ``run``: the command; starts its own stack, runs every workload, writes ``results/``.
- ``stack``: PostgreSQL, the Temporal dev server, the mail sink and worker processes.
- ``worker``: the worker process the stack starts (ours, or a baseline's, same settings).
- ``baselines``: the naive same-shape workflow and the floor workflow.
- ``history``: events and side effects of a case, read from its history.
- ``lifecycle``: cases driven through the common full path by scripted staff.
- ``parked``: open cases waiting for review, their cost and admin latency.
- ``report``: the machine, the JSON result and the markdown table.
- ``intel``: the intelligence-search benchmark (another engineer's; imported here).
"""
