"""Every config field that names data or weights (a `Location` in the schema) is checked by the
stage that reads it before anything is loaded or written: a local path or URI with nothing
there exits 2 naming the field; a path that exists, a built-in name and a hub id pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from ldmscale.cli.main import main
from ldmscale.config import schema
from ldmscale.config.rules import Location
from ldmscale.storage.sources import missing

GROUPS = {"data": schema.DataConfig, "eval": schema.EvalConfig}
LOCATIONS = {
    f"{group}.{name}"
    for group, cls in GROUPS.items()
    for name, rule in cls.RULES.items()
    if isinstance(rule, Location)
}
REAL_EVAL = ["eval=coco2014_30k", "eval.feature_extractor=clip"]
# The command that reads each field, with what makes it read it; the field is set to a path
# that does not exist, the others (where needed) to one that does.
READERS = {
    "data.autoencoder": ["train"],
    "data.text_encoder": ["train"],
    "eval.prompt_set": ["eval", *REAL_EVAL],
    "eval.reference_images": ["eval", *REAL_EVAL],
    "eval.clip_model": ["eval", *REAL_EVAL],
    "eval.inception_weights": ["eval", "eval.feature_extractor=inception"],
    "eval.sr_images": ["eval"],
    "eval.lpips_weights": ["eval"],
}


def test_every_location_field_has_a_reader_here() -> None:
    assert set(READERS) == LOCATIONS
    for cls in (schema.ModelConfig, schema.TrainConfig, schema.SamplerConfig):
        assert not any(isinstance(rule, Location) for rule in cls.RULES.values())


def test_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "weights.pth").write_bytes(b"")
    assert missing(str(tmp_path / "weights.pth")) is None
    assert missing(f"file://{tmp_path}") is None
    assert missing("openai/clip-vit-large-patch14") is None  # a hub id: the hub decides
    assert missing(str(tmp_path / "nope")) == "no such file or folder"
    assert missing(f"file://{tmp_path}/nope") == "no such file or folder"
    assert missing("./nope-here") == "no such file or folder"
    assert missing(f"memory://{tmp_path}/nope") == "nothing at this URI"


@pytest.mark.slow
@pytest.mark.parametrize("field", sorted(READERS))
def test_a_missing_path_exits_2_naming_the_field_and_writes_nothing(
    field: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study, present = tmp_path / "study", tmp_path / "present"
    present.mkdir()
    command, *context = READERS[field]
    others = [f"{f}={present}" for f in sorted(LOCATIONS - {field}) if f.startswith("eval.")]
    absent = tmp_path / "nonexistent"
    argv = [command, f"study={study}", *context, *others, f"{field}={absent}"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{field}='{absent}': no such file or folder" in err
    assert "Traceback" not in err
    assert not study.exists()
