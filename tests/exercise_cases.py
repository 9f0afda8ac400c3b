"""Answers for the parity tests: the Python checker and the browser checker must agree on each.

For every exercise the web page can check (number, choice, small tensor): its solution, every
listed wrong answer, a fixed set of malformed and absurd inputs, and answers generated from a
seeded random generator around the solution (inside, on and outside the tolerance, in every
written form the grammar accepts) and at random from the grammar's alphabet. Each case also
carries a number of earlier wrong answers, so that the hint progression is compared too.
"""

from __future__ import annotations

import random
from fractions import Fraction

from d2l_attn.exercises import all_exercises
from d2l_attn.exercises.web import answer_text, web_kind

MALFORMED = [
    "",
    "   ",
    "\t\n",
    "abc",
    "1+1",
    "2**10",
    "__import__('os').system('echo hacked')",
    "eval('1')",
    "1e200000000",
    "1e400",
    "-1e400",
    "1e-400",
    "1E999",
    "1e1000",
    "1e0005",
    "9" * 101,
    "1" + " " * 200,
    "1+2j",
    "3j",
    "-2.5J",
    "1-1i",
    "1/0",
    "0/0",
    "-0/7",
    "1/4/2",
    "1.5/2",
    "1234567890123456/7",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "Infinity",
    "\u221e",
    "1,5",
    "1.2.3",
    "\u00bd",
    "\u0663",
    "\uff11",
    "0x10",
    "1e",
    "e5",
    ".",
    "+",
    "-",
    "%",
    "5%%",
    "\u2212 0.5",
    "1_000",
    " 25 % ",
    "1 / 4",
    "+.5",
    "5.",
    "\u00a01\u202f000\u2009",
    "\U0001f600",
    "a\U0001f600c",
    "[1, 2",
    "[1, 2]]",
    "[[1, 2], [3]]",
    "[]",
    "[[]]",
    "[,1]",
    "[1,,2]",
    "[1,]",
    "[[1 2] [3 4]]",
    "tensor([[1, 2]])",
    "array([1.])",
    "tensor(1)",
    "[[[[[[[[[[1]]]]]]]]]]",
    "[" + ", ".join(["1"] * 1001) + "]",
    "a, z",
    "(a)",
    "A",
    "a b",
    "a;c",
    "a,,c",
    ",",
    "()",
    "a and c",
    "z",
    "a, a",
    "A, C",
    "(a), (b)",
    "abc, d",
    "\u0430",
    "\u212a",
    "\u0130",
]


def _number_forms(rng: random.Random, value: float) -> list[str]:
    frac = Fraction(value).limit_denominator(10**6)
    forms = [
        repr(value),
        f"{value:.3f}",
        f"{value:.6e}",
        f"{value:.2E}",
        f"{value * 100:.4f}%",
        f"{frac.numerator}/{frac.denominator}",
        f"{value:,.4f}".replace(",", "_"),
    ]
    text = rng.choice(forms)
    if rng.random() < 0.3:  # spaces, thin spaces, a unicode minus, a plus sign
        i = rng.randrange(len(text) + 1)
        text = text[:i] + rng.choice([" ", "\u2009", "\u00a0", "_"]) + text[i:]
    if rng.random() < 0.15:
        text = text.replace("-", "\u2212")
    if rng.random() < 0.1 and not text.startswith("-"):
        text = "+" + text
    return [text]


def _number_cases(rng: random.Random, ex) -> list[str]:
    s = float(ex.solution)
    out = []
    for k in (-1.5, -1.0, -0.999, 0.999, 1.0, 1.001, 1.5):  # around the relative tolerance
        out.append(repr(s * (1 + k * ex.rtol)))
    for k in (-1.0, 1.0, 0.5, 2.0):  # around the absolute tolerance
        out.append(repr(s + k * ex.atol))
    for _ in range(10):
        value = rng.choice(
            [
                s,
                s * (1 + rng.uniform(-3, 3) * ex.rtol),
                rng.uniform(-2, 2) * (abs(s) + 1),
                round(s, rng.randrange(0, 5)),
                -s,
            ]
        )
        out += _number_forms(rng, value)
    alphabet = "0123456789.eE+-/% _j\u2212"
    out += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 12))) for _ in range(8)]
    return out


def _choice_cases(rng: random.Random, ex) -> list[str]:
    letters = ex.letters()
    out = []
    for _ in range(14):
        chosen = rng.sample(letters, rng.randrange(0, len(letters) + 1))
        if rng.random() < 0.2:
            chosen.append(rng.choice(["z", "e", "f", "aa", "1"]))
        sep = rng.choice([",", ", ", ";", " ", " , ", "\t"])
        parts = [f"({c})" if rng.random() < 0.2 else c for c in chosen]
        text = sep.join(p.upper() if rng.random() < 0.3 else p for p in parts)
        out.append(rng.choice(["", " ", "\u00a0"]) + text + rng.choice(["", " ", "\n"]))
    for option in rng.sample(list(ex.options), min(3, len(ex.options))):
        out += [option, "  " + option.upper() + " ", option[:-1]]
    out += ["".join(rng.choice("abcdefz,; ()AC") for _ in range(rng.randrange(1, 10))) for _ in range(8)]
    return out


def _tensor_cases(rng: random.Random, ex) -> list[str]:
    expected = ex.expected()
    out = []
    for _ in range(12):
        values = expected.copy()
        flat = values.reshape(-1)
        for i in range(flat.size):
            mode = rng.random()
            if mode < 0.15:
                flat[i] = flat[i] * (1 + rng.choice([-2, -1, -0.5, 0.5, 1, 2]) * ex.rtol) + rng.choice(
                    [0, ex.atol, -ex.atol]
                )
            elif mode < 0.25:
                flat[i] = rng.uniform(-1, 1)
        digits = rng.choice([None, 4, 6, 2])
        nested = values.tolist()

        def fmt(x):
            if isinstance(x, list):
                inner = [fmt(v) for v in x]
                return "[" + rng.choice([", ", ",", " "]).join(inner) + "]"
            return repr(x) if digits is None else f"{x:.{digits}f}"  # noqa: B023 (called within this iteration)

        text = fmt(nested)
        roll = rng.random()
        if roll < 0.15:
            text = f"tensor({text})"
        elif roll < 0.25:
            text = text.replace("[", "[ ", 1)
        elif roll < 0.35:  # a wrong shape
            text = fmt(values.reshape(-1).tolist()) if rng.random() < 0.5 else fmt(values.T.tolist())
        elif roll < 0.42:  # a malformed one
            i = rng.randrange(len(text))
            text = text[:i] + rng.choice(["", "]", "[", ",,", "x"]) + text[i + 1 :]
        out.append(text)
    out += ["".join(rng.choice("[]0123456789., -e") for _ in range(rng.randrange(1, 16))) for _ in range(8)]
    return out


_ALL = all_exercises()


def parity_cases(seed: int = 13) -> list[dict]:
    """Every case: {"id", "text", "wrong_before", "origin"} (origin: solution/wrong/malformed/generated)."""
    rng = random.Random(seed)
    cases = []
    for eid, ex in sorted(_ALL.items()):
        kind = web_kind(ex)
        if kind == "code":
            continue
        texts = [("solution", answer_text(ex, ex.reference_answer()))]
        texts += [("wrong", answer_text(ex, w)) for w in ex.wrong_answers]
        texts += [("malformed", t) for t in MALFORMED]
        generated = {"number": _number_cases, "choice": _choice_cases, "tensor": _tensor_cases}[kind](rng, ex)
        if kind == "tensor" or kind == "number":
            texts += [("generated", answer_text(ex, ex.reference_answer()).replace(",", ", "))]
        texts += [("generated", t) for t in generated]
        for origin, text in texts:
            if text is not None:
                cases.append({"id": eid, "text": text, "wrong_before": rng.randrange(0, 4), "origin": origin})
    return cases


def python_verdict(case: dict) -> dict:
    ex = _ALL[case["id"]]
    fb = ex.feedback(ex.evaluate(case["text"]), case["wrong_before"])
    return {"status": fb.status, "message": fb.message, "hint": fb.hint}
