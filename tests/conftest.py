"""Suite-wide settings.

The suite runs with one pytest-xdist worker per core (``pytest -n 2``); each worker uses one torch thread
so the workers do not oversubscribe the cores (with two threads per worker, OpenMP barrier waits made
some tests 10x slower). Subprocesses started by tests (the CLI, DDP ranks) inherit the same limit.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)
