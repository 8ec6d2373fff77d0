"""Training: the DeepSpeed ZeRO trainer and its checkpoints."""
