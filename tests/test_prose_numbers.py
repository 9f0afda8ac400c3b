"""No measured number is typed into a page's prose.

Counts, times, losses, accuracies, BLEU scores and speed ratios change with the mode (quick or
full), the machine and the library versions; the text must take them from the executed run
(myst-nb ``glue`` and ``{glue:text}``) or show them in a printed table next to the claim. This
test scans the markdown cells of every chapter and appendix notebook, and the markdown pages of
the book (front matter and the question appendix), for numbers that *look*
measured -- decimals, percentages, durations, thousands-separated counts, "about N" and
"N times" -- after removing math, code spans, citations, roles, cross-references and section
numbers. Every number that remains must be in ``ALLOWED`` below, with the reason it may be
typed (a definition, a configuration the code sets, a published number with its source), so
a new typed number fails until someone glues it or justifies it.

For the same reason no page may type a run-mode label ("quick mode: ...", "(full mode)"): the
book is built in full mode and the tests run it in quick mode, so a label typed into the text is
wrong on one of the two; the page glues a run note from the run instead.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb")) + sorted((ROOT / "book").glob("*.ipynb"))
# the markdown pages: front matter, glossary and the question appendix
MARKDOWN = sorted((ROOT / "book").glob("*.md")) + sorted((ROOT / "book" / "questions").glob("*.md"))
PAGES = NOTEBOOKS + MARKDOWN

_NUMBER_WORDS = "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty"
MEASURED = re.compile(
    r"(?<![\w.#/-])(?:"
    r"\d[\d,.]*\s?(?:×|x\b)(?!\s?\d)"  # a ratio: 1.8x (not a size: 8×8, 224×224)
    r"|\d[\d,.]*\s(?:times\s+(?:faster|slower|more|less|as))"  # 2 times faster
    r"|\d[\d,.]*\s?%"  # a percentage: 5%, 40.5%
    r"|\d[\d,.]*\s?(?:ms|s|sec|seconds?|min|minutes?|hours?)\b"  # a duration: 3 s, 40 seconds
    r"|\b(?:" + _NUMBER_WORDS + r")[\s-](?:seconds?|minutes?|hours?)\b"  # about three minutes
    r"|(?:about|around|roughly|some|~|≈)\s?\d[\d,.]*%?"  # an approximate reading: about 30, ~15k
    r"|\d{1,3}(?:,\d{3})+"  # a count with thousands separators: 1,097, 18,065
    r"|\d[\d,]*\.\d+"  # a decimal: 0.35, 24.1
    r")",
    re.I,
)

# a run-mode label typed into prose: "quick mode: ...", "full mode:", "(quick mode)", "**full-mode**:"
RUN_MODE_LABEL = re.compile(r"\b(?:quick|full)[\s-]mode\b\**\s*[:)]", re.I)

# (page prefix, number as typed, why it may be typed, a string the page's code must contain
# -- so that a constant quoted in prose is the one the code uses -- or None)
ALLOWED = [
    # settings chosen by the text, each one set in the page's own code
    ("02", "5%", "the tolerance the check cell asserts (the measured gap is glued)", "0.05 * h_cv"),
    ("04", "80%", "the split fractions of data.split_by_source", None),
    ("04", "10%", "the split fractions of data.split_by_source", None),
    ("04", "3,000", "quick mode's number of pairs", "quick_or_full(3000"),
    ("07", "3,000", "quick mode's number of pairs", "quick_or_full(3000"),
    ("07", "0.1", "the dropout rate", "dropout=0.1"),
    ("10", "0.05", "the weight decay", "weight_decay=0.05"),
    ("12", "100,000", "the size of a simulation", "100_000"),
    ("12", "0.5", "the margin a check cell allows for the entropy", "0.5"),
    ("12", "0.1", "dropout and label smoothing rates", "0.1"),
    ("12", "ten minutes", "the time budget the full-mode recipe was chosen for, not a measurement", None),
    ("reproducing", "0.2", "D2L's dropout (its recipe, rerun in the page's code)", "dropout=0.2"),
    ("reproducing", "0.005", "D2L's learning rate (its recipe, rerun in the page's code)", "0.005"),
    ("reproducing", "0.001", "D2L's learning rate (its recipe, rerun in the page's code)", "0.001"),
    # sizes of code and of data, and facts of arithmetic, not measurements
    ("08", "about 30", "the length of a code listing the reader can count", None),
    ("10", "1,797", "the number of images in scikit-learn's load_digits (DESIGN.md)", None),
    ("10", "50,176", "224 x 224, arithmetic", None),
    ("10", "60,000", "Fashion-MNIST's published training-set size (Xiao et al. 2017)", None),
    ("10", "10,000", "Fashion-MNIST's published test-set size (Xiao et al. 2017)", None),
    ("10", "0.1", "a published recipe's dropout and learning rate (D2L), quoted with its source", None),
    ("12", "65,504", "the largest float16 number (IEEE 754)", None),
    ("09", "15%", "BERT's masking rate (Devlin et al. 2019), the recipe the code implements", None),
    ("09", "80%", "BERT's [MASK] share of picked tokens (Devlin et al. 2019)", None),
    ("09", "10%", "BERT's random / unchanged shares of picked tokens (Devlin et al. 2019)", None),
    ("09", "0.8", "BERT's [MASK] probability, in an exercise's question", None),
    ("09", "0.1", "BERT's random / unchanged probabilities, in an exercise's question", None),
    ("09", "4.0", "a loss given in an exercise's question", None),
    ("09", "50%", "chance on a balanced two-way task (arithmetic)", None),
    ("11", "12.5%", "chance among 8 keys (arithmetic)", None),
    ("11", "17%", "chance, 1 in 6 (arithmetic)", None),
    ("11", "95%", "the accuracy threshold the pruning cell uses", None),
    ("12", "70%", "the share of steps over which the temperature is annealed, set in the code", None),
    ("12", "90%", "the accuracy the steps-to-threshold statistic is defined by", None),
    # published numbers, each quoted with its source in the same paragraph
    ("09", "50,257", "GPT-2's vocabulary size (Radford et al. 2019, cited there)", None),
    ("09", "3.3", "BERT's 3.3 billion words of pretraining (Devlin et al. 2019, cited there)", None),
    ("09", "5.315", "D2L's printed MLM loss (d2l-pytorch-colab 0463544, named there)", None),
    ("09", "5.885", "D2L's printed MLM loss (d2l-pytorch-colab f854371, named there)", None),
    ("09", "0.790", "D2L's printed NSP loss (0463544)", None),
    ("09", "0.760", "D2L's printed NSP loss (f854371)", None),
    ("09", "0.2", "D2L's BERT recipe: dropout", None),
    ("09", "0.01", "D2L's BERT recipe: learning rate", None),
    ("09", "1.1", "Tiny Shakespeare's size, 1.1 million characters (nanoGPT's README)", None),
    ("09", "1.88", "nanoGPT's published validation loss (its README, cited there)", None),
    # chapter 9, section 9.10: published numbers, each quoted with its source
    ("09", "64.3%", "GPT-3's zero-shot TriviaQA accuracy (Brown et al. 2020, Table 3.3, cited there)", None),
    ("09", "68.0%", "GPT-3's one-shot TriviaQA accuracy (Brown et al. 2020, Table 3.3)", None),
    ("09", "71.2%", "GPT-3's few-shot TriviaQA accuracy (Brown et al. 2020, Table 3.3)", None),
    ("09", "1.4", "Chinchilla's 1.4 trillion training tokens (Hoffmann et al. 2022, cited there)", None),
    ("notes_a", "28.4", "the Transformer's published BLEU (Vaswani et al. 2017, Table 2, cited there)", None),
    ("12", "0.98", "the Transformer paper's Adam beta_2 (Vaswani et al. 2017, section 5.3)", None),
    ("08", "90%", "the accuracy threshold the check cell asserts (and an exercise's steps-to-threshold)", "> 0.9"),
    ("08", "1.5", "the A100's HBM bandwidth, 1.5-2.0 TB/s, quoted from Dao et al. 2022, section 2.1", None),
    ("12", "0.95", "the Adam beta_2 of GPT-3 and LLaMA (Brown et al. 2020, Touvron et al. 2023)", None),
    ("10", "0.01", "D2L's learning rate for ResNet-18 (its published recipe)", None),
    ("10", "0.010", "half a pixel of D2L's published ViT plot, in accuracy", None),
    ("10", "0.0035", "half a pixel of D2L's published ResNet plot, in accuracy", None),
    ("10", "0.03", "D2L's ResNet-18 training loss, read from its published plot", None),
    ("10", "0.4", "D2L's ViT losses, read from its published plot", None),
    ("reproducing", "about 0.11", "D2L's training loss read off its plot (d2l-pytorch-colab 0463544)", None),
    ("reproducing", "about 1.68", "D2L's validation loss read off its plot (run A, 0463544)", None),
    ("reproducing", "1.39", "D2L's lowest validation loss (run A, 0463544)", None),
    ("reproducing", "1.85", "D2L's validation loss (run B, f854371)", None),
    ("reproducing", "about 1%", "read off the pasted benchmark table right above it", None),
    ("reproducing", "about 1.35", "read off the pasted benchmark table right above it (126.59 / 93.20 ms)", None),
    ("reproducing", "0.87", "read off the pasted benchmark table right above it", None),
    ("reproducing", "3,600", "the output vocabulary in the pasted benchmark's config line", None),
]

# Published tables quoted whole, with their source: (page prefix, citation key in the same
# cell, why). The rows of a markdown table in such a cell are not scanned.
PUBLISHED_TABLES = [("08", "tay2021long", "Long Range Arena, Table 1 of Tay et al. (2021), quoted")]

# dataset constants documented in DESIGN.md; typed in prose they must equal the library's
CONSTANTS = {"18,065": "FULL_NUM_EXAMPLES"}


def _prose(cell_source: str) -> str:
    text = re.sub(r"\$\$.*?\$\$", " ", cell_source, flags=re.S)  # display math
    text = re.sub(r"\$[^$\n]+\$", " ", text)  # inline math
    text = re.sub(r"```.*?```|:::.*?\n", " ", text, flags=re.S)  # fenced blocks, directive lines
    text = re.sub(r"\{[\w:-]+\}`[^`]*`", " ", text)  # roles: {cite:p}`...`, {glue:text}`...`
    text = re.sub(r"`[^`\n]*`", " ", text)  # code spans
    text = re.sub(r"^:\w+:.*$", " ", text, flags=re.M)  # directive options (:width: 100%)
    text = re.sub(r"\]\([^)]*\)", "]", text)  # link targets
    # section and exercise numbers, question numbers, chapter ranges
    text = re.sub(r"(?:§|#+ |Exercise |Table |Figure |sections? )\d+(?:\.\d+)*", " ", text, flags=re.I)
    return text


def _markdown(path: Path) -> list[str]:
    """The page's prose: each markdown cell of a notebook, or the whole of a markdown page."""
    if path.suffix == ".md":
        return [path.read_text(encoding="utf-8")]
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]


def run_mode_labels(text: str) -> list[str]:
    """The run-mode labels ("quick mode:", "(full mode)") typed in a piece of markdown's prose."""
    return [" ".join(m.group(0).split()) for m in RUN_MODE_LABEL.finditer(_prose(text))]


def typed_numbers(path: Path) -> list[str]:
    tables = [key for page, key, _ in PUBLISHED_TABLES if path.name.startswith(page)]
    found = []
    for text in _markdown(path):
        if any(key in text for key in tables):  # a quoted table: skip its rows
            text = "\n".join(line for line in text.splitlines() if not line.startswith("|"))
        found += [" ".join(m.group(0).split()) for m in MEASURED.finditer(_prose(text))]
    return found


def _code(path: Path) -> str:
    if path.suffix == ".md":
        return ""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_no_measured_number_is_typed_into_prose(path):
    allowed = {number for page, number, _, _ in ALLOWED if path.name.startswith(page)}
    typed = [n for n in typed_numbers(path) if n not in allowed and n not in CONSTANTS]
    assert not typed, (
        f"{path.name}: numbers typed into markdown {typed}; glue them from the run "
        "({glue:text}`key`) or add them to ALLOWED in this test with the reason"
    )


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_no_run_mode_label_is_typed_into_prose(path):
    labels = [label for text in _markdown(path) for label in run_mode_labels(text)]
    assert not labels, (
        f"{path.name}: run-mode labels typed into markdown {labels}; the book is built in full mode "
        "and tested in quick mode, so glue a run note from the run ({glue:text}`..._run_note`)"
    )


def test_the_run_mode_scanner_flags_labels_and_not_descriptions():
    planted = (
        "In this run (quick mode: meaningless numbers) the BLEU is {glue:text}`bleu:.1f`; "
        "full mode: 30 epochs. A loss of {glue:text}`loss:.2f` (full mode) and **Quick mode**: 3 epochs."
    )
    assert run_mode_labels(planted) == ["quick mode:", "full mode:", "full mode)", "Quick mode**:"]
    described = (
        "Quick mode (the test suite) trains fewer epochs; full mode runs all of them, and the "
        "**quick mode** (the test suite) uses 3,000 pairs. Chapter 7's full-mode curves, "
        "`D2L_ATTN_QUICK=1` and {glue:text}`ch09_run_note` name no mode, nor does `quick mode: x`."
    )
    assert run_mode_labels(described) == [], run_mode_labels(described)


@pytest.mark.parametrize("page, number, reason, in_code", ALLOWED, ids=lambda v: str(v)[:20])
def test_allowed_numbers_are_still_used_as_documented(page, number, reason, in_code):
    """A stale allowlist entry hides nothing: each is still typed on its page, and a constant
    the code sets is still the one the code sets."""
    (path,) = [p for p in PAGES if p.name.startswith(page)]
    assert number in typed_numbers(path), f"{number!r} is no longer typed on {path.name}: remove it"
    assert reason
    if in_code is not None:
        assert in_code in _code(path), f"{path.name}'s code no longer contains {in_code!r}"


def test_dataset_constants_in_prose_are_the_librarys():
    from d2l_attn import data

    for typed, name in CONSTANTS.items():
        assert typed == f"{getattr(data, name):,}"


def test_the_scanner_finds_measured_numbers_and_skips_math_code_and_sections():
    sample = (
        "In our run (10 epochs, about three minutes) BLEU was 24.1 on 1,097 sentences, 35% "
        "better and 1.8x faster; see §4.7, Exercise 4.2, $p_n^{1/2^n} = 0.5$, `lr=0.005`, "
        "{cite:p}`vaswani2017attention` and {glue:text}`ch04_bleu:.1f`."
    )
    found = [m.group(0).strip() for m in MEASURED.finditer(_prose(sample))]
    assert found == ["three minutes", "24.1", "1,097", "35%", "1.8x"], found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_glued_name_in_prose_is_glued_by_the_page(path):
    """A ``{glue:...}`name``` whose name no code cell glues renders as a warning in the build (a
    failure under -W) -- catch it without building. Names made by f-strings match as patterns."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    prose = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    used = set(re.findall(r"\{glue(?::\w+)?\}`([\w.-]+)(?::[^`]*)?`", prose))
    made = [a or b for a, b in re.findall(r"""glue\(\s*f?(?:"([^"]+)"|'([^']+)')""", _code(path))]
    patterns = [re.compile(re.sub(r"\\\{[^}]*\\\}", r"\\w+", re.escape(name)) + "$") for name in made]
    if re.search(r"glue\(\s*[A-Za-z_]", _code(path)):  # glue(key, ...): the name is a string elsewhere
        patterns += [re.compile(re.escape(q) + "$") for q in re.findall(r"""["']([\w.-]+)["']""", _code(path))]
    missing = sorted(name for name in used if not any(p.match(name) for p in patterns))
    assert not missing, f"{path.name} shows glue names that its code never glues: {missing}"
