"""The one-off GPU benchmark pod (benchmarks/bench-gpu-pod.yaml) passes the strict Kubernetes
schemas, asks for one GPU with quoted quantities, runs the chart's image with the non-root and
read-only settings of the chart's pods, and runs a benchmark script the image holds with
arguments the script accepts."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
POD = ROOT / "benchmarks" / "bench-gpu-pod.yaml"
KUBE_VERSIONS = ("1.30.0", "1.37.0")  # as tests/cluster/test_chart.py


def _pod() -> dict:
    return yaml.safe_load(POD.read_text())


def test_the_pod_passes_the_strict_schemas_with_quoted_quantities(checks) -> None:
    pod = _pod()
    for version in KUBE_VERSIONS:
        assert not checks.k8s_errors(pod, version)
    assert not checks.quantity_errors(pod)
    (container,) = pod["spec"]["containers"]
    resources = container["resources"]
    assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] == "1"


def test_the_pod_runs_the_charts_image_as_the_charts_pods_do(checks) -> None:
    values = yaml.safe_load((ROOT / "charts" / "eval" / "values.yaml").read_text())
    pod = _pod()
    (container,) = pod["spec"]["containers"]
    assert container["image"] == f"{values['image']['repository']}:{values['image']['tag']}"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["spec"]["securityContext"]["runAsUser"] == 1000
    # The writable places of the chart's pods, and every cache pointed into them.
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/tmp", "/cache", "/dev/shm"} <= mounts
    for item in container["env"]:
        if item["value"].startswith("/"):
            assert item["value"].startswith(("/tmp/", "/cache")), item


def test_the_command_is_a_script_of_the_image_with_valid_arguments() -> None:
    (container,) = _pod()["spec"]["containers"]
    program, script = container["command"]
    assert program == "python" and script.startswith("/opt/ldmscale/")
    relative = script.removeprefix("/opt/ldmscale/")
    assert (ROOT / relative).is_file()
    # The image copies the script's folder to /opt/ldmscale (and keeps it).
    dockerfile = (ROOT / "images" / "Dockerfile").read_text()
    folder = relative.split("/")[0]
    assert re.search(rf"^COPY {folder} \./{folder}$", dockerfile, re.MULTILINE), folder
    assert not re.search(rf"rm -rf[^\n]*\b{folder}\b", dockerfile)
    sys.path.insert(0, str(ROOT / folder))
    try:
        import bench_gpu

        bench_gpu.parse(container.get("args", []))  # argparse exits on a bad argument
    finally:
        sys.path.remove(str(ROOT / folder))
