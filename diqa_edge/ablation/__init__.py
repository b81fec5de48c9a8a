"""Ablation: variants of one training recipe, trained on the same splits, exported, benchmarked and
set in one table (``diqa-edge ablate``). It sits on top because it uses training, export and bench."""
