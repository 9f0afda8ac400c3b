"""d2l_attn."""
