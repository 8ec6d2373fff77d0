"""The pods' retry strategy agrees with `ldmscale.errors`: what a retry can help (75, a pod
killed, an Argo error) is retried; bad input (2), a non-finite result (65), an out-of-memory
kill and any other failure (1) fail at once. The expression is read by Argo's expression rules
for the operators it uses (`&&`, `||`, `!`, `==`, `!=`, `in`, `contains`)."""

from __future__ import annotations

import re

import pytest
import yaml
from cluster_fixtures import ROOT

from ldmscale.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_NON_FINITE, EXIT_RETRY

STRATEGY = ROOT / "charts" / "eval" / "files" / "retry-strategy.yaml"


def _retried(code: int, status: str = "Failed", message: str = "") -> bool:
    expression = yaml.safe_load(STRATEGY.read_text())["expression"]
    python = re.sub(r"(lastRetry\.\w+) contains (\"[^\"]*\")", r"(\2 in \1)", expression)
    python = python.replace("&&", " and ").replace("||", " or ").replace("!=", "<>")
    python = python.replace("!", " not ").replace("<>", "!=")
    names = {"exitCode": str(code), "status": status, "message": message}
    python = re.sub(r"lastRetry\.(\w+)", lambda m: repr(names[m[1]]), python)
    return bool(eval(python))  # only literals and operators are left


@pytest.mark.parametrize(
    ("code", "status", "message", "retried"),
    [
        (EXIT_RETRY, "Failed", "", True),
        (143, "Failed", "", True),
        (137, "Error", "pod deleted", True),
        (EXIT_BAD_INPUT, "Failed", "", False),
        (EXIT_NON_FINITE, "Failed", "", False),
        (EXIT_FAILED, "Failed", "", False),
        (137, "Failed", "OOMKilled (exit code 137)", False),
    ],
)
def test_only_what_a_retry_can_help_is_retried(
    code: int, status: str, message: str, retried: bool
) -> None:
    assert _retried(code, status, message) is retried
