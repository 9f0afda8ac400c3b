"""pytest settings for the whole repository (unit tests in tests/, notebooks in chapters/).

Quick mode for every test and every notebook: nbval's kernels inherit this environment. This
file sits at the root so that it is loaded by every xdist worker, whichever files it runs.
"""

import os

import pytest

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


# --------------------------------------------------------------------------------------------
# How xdist shares the work (``-n 2 --dist loadgroup --no-loadscope-reorder`` in pyproject.toml)
# --------------------------------------------------------------------------------------------
# Each test file is one work unit (as ``--dist loadfile``: a notebook's cells share one kernel,
# a file's module fixtures are made once), except the browser tests of an already built site
# (``D2L_ATTN_SITE``, as in CI): the few minutes of tests/test_site.py are split into chunks
# that both workers take, instead of running on one worker while the other idles. Without
# D2L_ATTN_SITE the module builds the book itself, once, so it stays one unit.
_SITE = "tests/test_site.py"
# test function -> chunk of tests/test_site.py (the rest: one chunk "other")
_SITE_CHUNKS = {
    "test_axe_finds_no_critical_or_serious_violation": "axe",
    "test_the_whole_book_pdf": "pdf",
    "test_page_weight_is_printed": "weight",
    "test_exercises_answer_back_without_a_kernel": "exercises",
    "test_page_in_browser": "pages",
    "test_static_interactive_figure_responds": "figures",
    "test_attention_view_responds_on_the_page": "figures",
    "test_architecture_figure_loads_with_alt_text": "figures",
}
# chunks long enough to split in two (their items alternate between the halves)
_SPLIT = {"exercises", "pages"}
# The work units that take longest go out first (a long one handed out last keeps one worker
# busy after the other has finished): rough seconds on 2 busy cores, for the order only.
_LONGEST_FIRST = {
    f"{_SITE}:axe": 190,
    "chapters/10_vision_transformer.ipynb": 140,
    f"{_SITE}:exercises-0": 110,
    f"{_SITE}:exercises-1": 110,
    f"{_SITE}:pdf": 110,
    f"{_SITE}:pages-0": 80,
    f"{_SITE}:pages-1": 80,
    "chapters/12_training_stability.ipynb": 80,
    f"{_SITE}:other": 80,
    f"{_SITE}:weight": 75,
    f"{_SITE}:figures": 70,
    "chapters/07_transformer.ipynb": 60,
    "chapters/11_interpreting_attention.ipynb": 55,
    "chapters/09_pretraining.ipynb": 50,
    "chapters/08_efficient_attention.ipynb": 45,
}


def _work_unit(item, root, split_site: bool) -> str:
    try:
        path = item.path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(item.path)
    if path == _SITE and split_site:
        return f"{_SITE}:{_SITE_CHUNKS.get(getattr(item, 'originalname', item.name), 'other')}"
    return path


def _split(units: list[str]) -> list[str]:
    """The chunks of _SPLIT in two halves: a chunk's items alternate between "-0" and "-1"."""
    seen: dict[str, int] = {}
    out = []
    for unit in units:
        chunk = unit.removeprefix(f"{_SITE}:")
        if unit.startswith(f"{_SITE}:") and chunk in _SPLIT:
            seen[unit] = seen.get(unit, -1) + 1
            unit = f"{unit}-{seen[unit] % 2}"
        out.append(unit)
    return out


@pytest.hookimpl(tryfirst=True)  # before xdist appends the group to each node id
def pytest_collection_modifyitems(config, items):
    # (on an xdist worker, --dist is reset to "no" and option.loadgroup tells)
    if not (getattr(config.option, "loadgroup", False) or config.getoption("dist", "no") == "loadgroup"):
        return
    root = config.rootpath.resolve()
    split_site = bool(os.environ.get("D2L_ATTN_SITE", "").strip())
    units = dict(zip([i.nodeid for i in items], _split([_work_unit(i, root, split_site) for i in items])))
    for item in items:
        item.add_marker(pytest.mark.xdist_group(units[item.nodeid]))
    # stable: within a unit, and among the units not listed, the collection order stays
    items.sort(key=lambda item: -_LONGEST_FIRST.get(units[item.nodeid], 0))
