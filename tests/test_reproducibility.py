"""Seeded runs give the same numbers on the same machine (a standard of the book).

Each check runs the same seeded computation twice in this process and compares the numbers
exactly: the data split and batches, model initialization, dropout masks and the training
losses of the chapter 4 model on the real fra-eng sample.
"""

import torch

from d2l_attn import data, losses, translation, utils
from d2l_attn.training import Trainer


def train_once(seed: int) -> tuple[list[float], torch.Tensor]:
    utils.seed_everything(seed)
    nmt = data.load_data_nmt(batch_size=32, num_steps=8, num_examples=600, seed=seed)
    model = translation.seq2seq_from_vocabs(nmt.src_vocab, nmt.tgt_vocab, embed_size=16, num_hiddens=16, dropout=0.2)
    trainer = Trainer(model, losses.seq2seq_loss, lr=0.01, device="cpu", progress=False)
    history = trainer.fit(nmt.train_loader(), nmt.val_loader(), num_epochs=2)
    first_weight = next(model.parameters()).detach().clone()
    return history["train_loss"] + history["val_loss"], first_weight


def test_seeded_training_is_reproducible():
    losses_a, weight_a = train_once(0)
    losses_b, weight_b = train_once(0)
    assert losses_a == losses_b  # exactly, not approximately
    assert torch.equal(weight_a, weight_b)


def test_a_different_seed_gives_different_numbers():
    # guards the test above against passing because nothing depends on the seed
    losses_a, _ = train_once(0)
    losses_c, _ = train_once(1)
    assert losses_a != losses_c


PRETRAIN = "--steps 3 --batch-size 2 --block-size 16 --layers 1 --heads 2 --d-model 16 --dropout 0.1"
PRETRAIN += " --threads 1 --log-every 100 --eval-batches 1 --warmup 1"


def _pretrain_losses(out, seed: int) -> list[float]:
    """``python -m d2l_attn.pretrain`` in a fresh process (torch's default seed differs per process)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "d2l_attn.pretrain", *PRETRAIN.split(), "--seed", str(seed), "--out", str(out)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(root))
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())["losses"]


def test_pretraining_with_dropout_is_reproducible_across_processes(tmp_path):
    """Review 2026-12-07: dropout drew from the unseeded global RNG, so two runs differed from step 1."""
    import pytest

    if not (data.data_dir() / "tinyshakespeare" / "input.txt").is_file():
        pytest.skip("no local Tiny Shakespeare copy (the script would download it)")
    a, b = _pretrain_losses(tmp_path / "a.json", 0), _pretrain_losses(tmp_path / "b.json", 0)
    assert a == b  # exactly
    assert _pretrain_losses(tmp_path / "c.json", 1) != a  # the seed matters
