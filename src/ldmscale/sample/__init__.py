"""Sampling: the sampler registry (diffusers schedulers by name) and image generation."""
