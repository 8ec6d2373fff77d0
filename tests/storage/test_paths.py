"""The study layout is built from a job's identity, one spelling per configuration."""

from ldmscale.storage import paths


def test_layout_matches_the_design() -> None:
    key = paths.EvalKey("866m", 500000, "ddim", 50, 7.5)
    assert paths.checkpoint_dir("866m", 500000) == "models/866m/checkpoints/step-500000"
    assert key.dir == "evals/866m/step-500000/ddim-s50-g7.5"
    assert key.shard_dir(2, 8) == "evals/866m/step-500000/ddim-s50-g7.5/shard-2-of-8"
    assert paths.train_log("debug") == "models/debug/train_log.jsonl"


def test_guidance_has_one_spelling() -> None:
    assert paths.format_guidance(1.0) == paths.format_guidance(1) == "1"
    assert paths.format_guidance(7.50) == "7.5"


def test_checkpoint_names_round_trip() -> None:
    assert paths.parse_checkpoint_name(paths.checkpoint_name(42)) == 42
    assert paths.parse_checkpoint_name("step-x") is None
    assert paths.parse_checkpoint_name("latest") is None
