"""sessionwatch benchmarks: ``python -m bench`` (``--quick`` for a short run).

Every figure is measured side by side with its reference in the same run (interleaved
repetitions), against a redis-server the harness starts itself; see bench/RESULTS.md.
"""
