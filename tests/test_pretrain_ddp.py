"""The pretraining script runs unchanged under torchrun: 2 gloo processes on the CPU give the losses of
one process on the same global batch (DistributedDataParallel averages the gradients)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from d2l_attn.data import data_dir

ROOT = Path(__file__).resolve().parents[1]
ARGS = [
    "--steps",
    "6",
    "--batch-size",
    "4",
    "--block-size",
    "16",
    "--layers",
    "1",
    "--heads",
    "2",
    "--d-model",
    "32",
    "--threads",
    "1",
    "--log-every",
    "100",
    "--lr",
    "3e-3",
    "--warmup",
    "2",
    "--eval-batches",
    "2",
]


def run(cmd: list[str], out: Path) -> list[float]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        cmd + ARGS + ["--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return json.loads(out.read_text())["losses"]


def test_two_gloo_processes_equal_one_process(tmp_path):
    if not (data_dir() / "tinyshakespeare" / "input.txt").is_file():
        pytest.skip("no local Tiny Shakespeare copy (the script would download it)")
    single = run([sys.executable, "-m", "d2l_attn.pretrain"], tmp_path / "single.json")
    ddp = run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "d2l_attn.pretrain",
        ],
        tmp_path / "ddp.json",
    )
    assert json.loads((tmp_path / "ddp.json").read_text())["world_size"] == 2
    assert len(single) == len(ddp) == 6
    assert single[-1] < single[0]  # it trains
    for a, b in zip(single, ddp):
        assert abs(a - b) < 1e-4, (single, ddp)
    # and the test can fail: a different global batch gives other losses
    other = run([sys.executable, "-m", "d2l_attn.pretrain", "--seed", "7"], tmp_path / "other.json")
    assert max(abs(a - b) for a, b in zip(single, other)) > 1e-3


def test_learning_rate_schedule_warms_up_then_decays_to_min_lr():
    from d2l_attn.pretrain import learning_rate, parse_args

    args = parse_args(["--steps", "1000", "--warmup", "100", "--lr", "1e-3", "--min-lr", "1e-4"])
    lrs = [learning_rate(t, args) for t in range(1000)]
    assert lrs[0] == pytest.approx(1e-5) and lrs[99] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[100:], lrs[101:]))  # monotone decay after warm-up
    assert lrs[549] == pytest.approx(0.5 * (1e-3 + 1e-4))  # optimizer step 550: halfway through the cosine
    assert lrs[-1] == pytest.approx(1e-4)  # the last step uses min_lr
