"""The Workflow `ldmscale submit` creates comes from workflows/scaling-sweep.yaml (or the copy
$LDMSCALE_WORKFLOWS_DIR names, as in the image), and the templates it needs are found by
following templateRefs through the installed chart."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cluster_fixtures import ROOT

from ldmscale.cluster.workflow import (
    WORKFLOWS_DIR_ENV,
    load_sweep_workflow,
    missing_templates,
    sweep_workflow,
    workflows_dir,
)
from ldmscale.config import ConfigError


def test_the_checkout_folder_is_found_and_the_env_var_wins(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv(WORKFLOWS_DIR_ENV, raising=False)
    assert workflows_dir() == ROOT / "workflows"
    copy = yaml.safe_load((ROOT / "workflows" / "scaling-sweep.yaml").read_text())
    copy["metadata"]["generateName"] = "elsewhere-"
    (tmp_path / "scaling-sweep.yaml").write_text(yaml.safe_dump(copy))
    monkeypatch.setenv(WORKFLOWS_DIR_ENV, str(tmp_path))
    assert load_sweep_workflow()["metadata"]["generateName"] == "elsewhere-"


def test_parameters_are_set_by_name_and_unknown_ones_refused() -> None:
    doc = sweep_workflow({"study": "s3://b/x", "sweep": "paper"}, "ml", "runner")
    assert doc["metadata"]["namespace"] == "ml" and doc["spec"]["serviceAccountName"] == "runner"
    params = {p["name"]: p.get("value") for p in doc["spec"]["arguments"]["parameters"]}
    assert params == {"study": "s3://b/x", "sweep": "paper", "overrides": ""}
    assert "value" not in load_sweep_workflow()["spec"]["arguments"]["parameters"][0]
    with pytest.raises(ConfigError, match="declares no parameter 'model'"):
        sweep_workflow({"model": "866m"}, "ml")


def test_needed_templates_are_followed_through_the_chart(installed) -> None:  # type: ignore[no-untyped-def]
    by_name = {t["metadata"]["name"]: t for t in installed}
    workflow = sweep_workflow({"study": "s3://b/x"}, "ml")
    assert missing_templates(workflow, by_name) == []
    nested = {k: v for k, v in by_name.items() if k != "ldmscale-eval"}  # used by -evaluate
    assert missing_templates(workflow, nested) == ["ldmscale-eval"]
    assert missing_templates(workflow, {}) == ["ldmscale-sweep"]
