"""The study layout is built from a job's identity, one spelling per configuration."""

import pytest

from ldmscale.storage import paths
from ldmscale.storage.paths import EvalKey, RunKey


def test_layout_matches_the_design() -> None:
    key = paths.EvalKey(RunKey("866m"), 500000, "ddim", 50, 7.5)
    assert paths.checkpoint_dir(RunKey("866m"), 500000) == "models/866m/checkpoints/step-500000"
    assert key.dir == "evals/866m/step-500000/ddim-s50-g7.5"
    assert key.shard_dir(2, 8) == "evals/866m/step-500000/ddim-s50-g7.5/shard-2-of-8"
    assert paths.train_log(RunKey("debug")) == "models/debug/train_log.jsonl"


def test_a_fine_tuning_stage_lives_under_its_model() -> None:
    run = RunKey("debug", "dreambooth", "dog")
    assert paths.checkpoint_dir(run, 5) == "models/debug/dreambooth/dog/checkpoints/step-5"
    assert paths.train_log(run) == "models/debug/dreambooth/dog/train_log.jsonl"
    assert run.parent == RunKey("debug") and RunKey("debug").parent is None
    key = EvalKey(run, 5, "ddim", 4, 1.0)
    assert key.dir == "evals/debug/dreambooth/dog/step-5/ddim-s4-g1"
    assert paths.is_config_dir(key.dir) and not paths.is_config_dir(key.shard_dir(0, 1))
    assert EvalKey.parse(key.path) == key and RunKey.parse(run.path) == run


def test_the_spacing_is_named_when_it_is_not_the_default() -> None:
    trailing = EvalKey(RunKey("debug"), 5, "ddim", 4, 2.0)
    leading = EvalKey(RunKey("debug"), 5, "ddim", 4, 2.0, "leading")
    assert trailing.config_name == "ddim-s4-g2" and leading.config_name == "ddim-s4-g2-leading"
    assert trailing.dir != leading.dir
    assert EvalKey.parse(leading.path) == leading and EvalKey.parse(trailing.path) == trailing


@pytest.mark.parametrize(
    "parts", [("debug", "", "dog"), ("debug", "checkpoints"), ("debug", "step-3"), ("Big",)]
)
def test_run_names_that_would_not_read_back_are_refused(parts: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="run"):
        RunKey(*parts)


def test_guidance_has_one_spelling() -> None:
    assert paths.format_guidance(1.0) == paths.format_guidance(1) == "1"
    assert paths.format_guidance(7.50) == "7.5"


def test_checkpoint_names_round_trip() -> None:
    assert paths.parse_checkpoint_name(paths.checkpoint_name(42)) == 42
    assert paths.parse_checkpoint_name("step-x") is None
    assert paths.parse_checkpoint_name("latest") is None


def test_downstream_artifacts_have_a_folder_each() -> None:
    from ldmscale.storage.paths import (
        EvalKey,
        RunKey,
        interpolation_dir,
        item_name,
        item_text,
        prior_dir,
        subject_dir,
    )

    assert prior_dir("t16", "teddy bear") == "priors/t16/teddy_bear"
    assert item_text(item_name("teddy bear")) == "teddy bear"
    key = EvalKey(RunKey("t16", "dreambooth", "dog"), 800, "ddim", 50, 7.5)
    assert subject_dir("dog", key) == "subjects/dog/t16/dreambooth/dog/step-800/ddim-s50-g7.5"
    assert interpolation_dir("2b", 500000, "computer-phone") == (
        "interpolations/2b/step-500000/computer-phone"
    )
