"""Test-suite settings: quick mode for every test and every notebook (nbval inherits the env)."""

import os

os.environ["D2L_ATTN_QUICK"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
