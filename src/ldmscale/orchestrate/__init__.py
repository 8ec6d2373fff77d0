"""Orchestration: the plan of a sweep (job ids and dependencies) and the local runner."""
