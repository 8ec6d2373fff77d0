"""The chart's README from the `# --` comments of charts/eval/values.yaml (the convention of
helm-docs): `python tests/support/chart_docs.py` writes charts/eval/README.md (`make chart-docs`),
and tests/cluster/test_docs.py fails when the README is stale or a value is undocumented."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

CHART = Path(__file__).resolve().parents[2] / "charts" / "eval"
_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+):(?P<rest>.*)$")

INTRO = """\
# ldmscale evaluation chart

Installs ldmscale on a Kubernetes cluster with Argo Workflows: a ServiceAccount with a namespaced
Role, a ConfigMap of infrastructure defaults, the WorkflowTemplates every study runs
(`ldmscale-sweep`, `-plan`, `-prepare`, `-train`, `-evaluate`, `-eval`, `-merge`, `-analyze`,
`-evaluation-service`), the evaluation service (a CronWorkflow that scores new checkpoints while
training runs) and a `helm test` of storage access.

```sh
helm install ldm-eval charts/eval --set storage.study=s3://bucket/study
helm test ldm-eval
argo submit workflows/scaling-sweep.yaml -p study=s3://bucket/study -p sweep=paper
```

**One release per namespace.** The WorkflowTemplates have fixed names, which
`workflows/scaling-sweep.yaml` and the sweep DAG refer to; install a second release in another
namespace.

The values hold infrastructure only (image, GPUs and resources per job kind, node pools, the
Secret's name, concurrency caps); hyperparameters come from `configs/` through the sweep name and
the override string. Each entry of `jobs` is merged over `jobDefaults`. `ci/*-values.yaml` are
example deployments, checked by `make check-k8s`.

## Values

This table is generated from the `# --` comments of `values.yaml` (`make chart-docs`).

| key | default | description |
| --- | --- | --- |
"""


def documented(text: str) -> list[tuple[str, str]]:
    """(dotted key, description) of every `# --` comment, in file order."""
    out: list[tuple[str, str]] = []
    stack: list[tuple[int, str]] = []
    pending: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            pending = [stripped[4:].strip()]
            continue
        if stripped.startswith("#") and pending is not None:
            pending.append(stripped[1:].strip())
            continue
        match = _KEY.match(line)
        if not match:
            pending = None if not stripped else pending
            continue
        indent = len(match["indent"])
        stack = [(i, k) for i, k in stack if i < indent]
        stack.append((indent, match["key"]))
        if pending is not None:
            out.append((".".join(k for _, k in stack), " ".join(pending)))
        pending = None
    return out


def leaves(values: dict, prefix: str = "") -> list[str]:
    """Dotted paths of every value that is not a non-empty mapping."""
    out = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.extend(leaves(value, f"{path}."))
        else:
            out.append(path)
    return out


def undocumented() -> list[str]:
    """Values neither documented themselves nor under a documented key."""
    text = (CHART / "values.yaml").read_text()
    keys = {key for key, _ in documented(text)}
    return [
        path
        for path in leaves(yaml.safe_load(text))
        if not any(path == key or path.startswith(key + ".") for key in keys)
    ]


def readme() -> str:
    """The README text."""
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    rows = []
    for key, description in documented(text):
        value = values
        for part in key.split("."):
            value = value[part]
        default = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
        default = default.removesuffix("\n...").removesuffix("...").strip()
        rows.append(f"| `{key}` | `{default}` | {description} |")
    return INTRO + "\n".join(rows) + "\n"


if __name__ == "__main__":
    (CHART / "README.md").write_text(readme())
    sys.exit(0)
