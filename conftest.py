"""pytest settings for the whole repository (unit tests in tests/, notebooks in chapters/).

Quick mode for every test and every notebook: nbval's kernels inherit this environment. This
file sits at the root so that it is loaded by every xdist worker, whichever files it runs.
"""

import os

os.environ["D2L_ATTN_QUICK"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
# Under `-n 2` on a 2-core machine two workers (and the notebook kernels they start) run at
# once; with torch's default of one thread per core they oversubscribe the CPU, and small
# training loops slow down by 10-100x (measured: 0.35 s -> 30 s). One thread per process.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# The real English-French sample beside the checkout (../shared/data), for machines without
# network access; .ci/run sets the same. An explicit D2L_ATTN_DATA wins.
_shared_data = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "shared", "data")
if "D2L_ATTN_DATA" not in os.environ and os.path.isfile(os.path.join(_shared_data, "fra-eng", "fra.txt")):
    os.environ["D2L_ATTN_DATA"] = os.path.abspath(_shared_data)
