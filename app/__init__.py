"""Prefloop: human preference labeling, agreement, export and RLHF training."""

import os

# numpy's OpenBLAS: one thread unless the operator says otherwise. Its matrix products
# here are small (the agreement bootstrap's resample sums); a second BLAS thread only
# spins against the web workers and PostgreSQL for the machine's cores (the bootstrap
# took 2x the CPU with two threads on 2 cores, same results). Read when numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
