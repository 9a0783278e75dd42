"""The matching benchmark, one module per section of docs/BENCHMARKS.md (recovery, ood, tones,
fx, fidelity, proposals, calibrate, refinement, speed, vital_fx), the report plumbing the other
benchmarks share (``report``) and the General MIDI inputs (``gm``). Run it as
``python -m scripts.bench_match`` (``__main__``)."""

import os

# One BLAS/OpenMP thread per process, set before numpy's first import: this package is imported
# before any of its modules (and before ``__main__`` under ``python -m scripts.bench_match``), so
# the setting also holds for the scripts that import the report plumbing from here first.
os.environ.setdefault("OMP_NUM_THREADS", "1")
