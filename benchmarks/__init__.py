"""Benchmarks: speed and memory goals, measured against a baseline in the same run.

Run all with ``python -m benchmarks`` (or ``./dev.sh bench``); one with
``python -m benchmarks sim``. Each module ``bench_<topic>.py`` exposes ``run() -> list[dict]``
with keys name, value, unit, baseline, ratio, goal, met.
"""
