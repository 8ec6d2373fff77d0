"""Evaluation: metric states per shard, merging, and the embedded domain's evaluator."""
