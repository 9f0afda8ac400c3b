"""pytest settings for the whole repository (unit tests in tests/, notebooks in chapters/).

Quick mode for every test and every notebook: nbval's kernels inherit this environment. This
file sits at the root so that it is loaded by every xdist worker, whichever files it runs.
"""

import os

os.environ["D2L_ATTN_QUICK"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
