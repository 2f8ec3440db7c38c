"""Benchmarks (not timed tests): load generators and latency measurements print their figures."""
