"""d2l_attn: the library behind *Attention, Executable*.

One module per idea; each module's docstring explains it with the math, and the chapters teach
it. Dependencies point one way: the attention core never imports the models or the tools.

========================  ====================================================  ==========
module                    what it holds                                          chapters
========================  ====================================================  ==========
``masking``               padding / causal / window / block-sparse masks         3, 5, 7, 8
``pooling``               soft lookup, kernels, Nadaraya-Watson                  1, 2
``scoring``               additive and scaled dot-product attention              3
``multihead``             head split/merge, multi-head attention, KV cache       5, 7
``efficient``             local, low-rank, linear, Performer, tiled attention;   8
                          grouped-query attention
``positional``            sinusoidal, learned, rotary (RoPE) and ALiBi           6, 8, 9
                          positions; attention with positions in the scores
``embeddings``            token embedding with positions; patches + [CLS]        7, 10
``blocks``                FFN, residual + norm, self-attention / decoder blocks  7
``models``                GRU seq2seq (``rnn_seq2seq``), Transformer, ViT,      4, 7, 10
                          a small CNN
``models.gpt``            decoder-only GPT (pre-/post-LN, GQA, four kinds of     8, 9, 12
                          positions), KV-cache generation
``models.bert``           BERT encoder, MLM and NSP heads                        9
``interop``               Hugging Face GPT-2, BERT and ViT weights into our      9, 10, 11
                          models; torch.nn attention weights
``tokenizers``            byte-pair encoding learned from scratch                9
``pretrain``              GPT pretraining script, one process or torchrun/DDP    9
``losses``                shift-right, masked cross-entropy, seq2seq loss        4, 7, 12
``losses`` (pretraining)  LM, MLM (80/10/10 masking), NSP losses                 9
``decoding``              step-model protocol, greedy, beam, sampling            4, 7
``translation``           models for two vocabularies, translate, BLEU,          4, 7
                          save/load
``interpret``             every attention map of one forward pass; entropy,      7, 11
                          value norms, head ablation, induction score, logits
``attribution``           rollout, attention flow, gradient x input, integrated  11
                          gradients, rank scores, linear probes
``training``              the Trainer (AMP, clipping, hooks, checkpoints,        4, 5, 7
                          epochs or steps: ``fit`` / ``fit_steps``)
``stability``             init, QK-norm, Gumbel, tying, dropout, monitors        12
``optim``                 warm-up / inverse-sqrt / cosine schedules, weight-    9, 12
                          decay groups, temperature annealing
``profiling``             parameters, FLOPs, timers, threads, MFU, peak memory   5, 6, 7, 8
``metrics``               BLEU (checked against sacrebleu), calibration (ECE)    4, 7, 12
``data``                  downloads, vocabularies, fra-eng, synthetic, images    2, 4, 5, 7, 10
``data.text``             WikiText-2, Tiny Shakespeare, LM batches               9
``plotting``              heatmaps, attention grids, curves                      all
``attention_view``        interactive attention view for pages, no kernel/CDN    7, 11
``figure_alt``            alt text for every figure a notebook shows             all
``widgets``               kernel-free sliders and live explorers                 all
``display``               result tables (HTML), live explorers' static figures   1-3, 6-12
``exercises``             answer checkers with hints, one file per chapter       all
``utils``                 device, seeding, quick mode, atomic save/load          all
========================  ====================================================  ==========

Chapter 9 (pretraining) is being written: its modules (``models.gpt``, ``models.bert``,
``tokenizers``, ``pretrain``, ``data.text`` and the pretraining losses) are complete and tested.

Import what you need: ``from d2l_attn.multihead import MultiHeadAttention``.
"""

__version__ = "0.2.0"
