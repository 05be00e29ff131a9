"""The parts of `pipelines/benchmark.py`: contenders, timing, FLOPs, hardware, report."""
