"""keras-vae's benchmarks, run from a checkout: `python -m benchmarks --help`.

They stay outside the installed packages: training beside the keras.io recipe
and PyTorch, decoder inference in every runtime, serving beside the real
Triton server, and the report that `make bench` writes to docs/benchmarks.md.
"""
