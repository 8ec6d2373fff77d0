"""Every container command in the chart is a valid `ldmscale` invocation (training included: its
launcher options are torchrun's, parsed by torchrun's own parser), the study reaches the config
exactly whatever characters its URI holds, and the job ids the DAGs build from `ldmscale plan`'s
lists are the plan's own."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from ldmscale.cli.main import parse
from ldmscale.config import compose
from ldmscale.orchestrate.jobs import parse_job_id
from ldmscale.orchestrate.launch import parse_launch

CHART = Path(__file__).resolve().parents[2] / "charts" / "eval"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))

# Sample values for the Argo placeholders, per job kind of the template.
SAMPLE_JOB = {
    "prepare": "prepare",
    "train": "train/39m",
    "eval": "eval/39m/step-500000/ddim-s50-g7.5/shard-0-of-8",
    "merge": "merge/39m/step-500000/ddim-s50-g7.5",
    "analyze": "analyze",
}
STUDY = "s3://bucket/h/date=2024, it's"
"""A study URI with characters Hydra's grammar would read as syntax."""
SAMPLE = {
    "workflow.parameters.study": STUDY,
    "workflow.parameters.sweep": "paper",
    "workflow.parameters.overrides": "seed=3 device=cuda",
}
PLACEHOLDER = re.compile(r"\{\{\s*([^}]+?)\s*\}\}")


def _substitute(text: str, kind: str) -> str:
    values = {**SAMPLE, "inputs.parameters.job": SAMPLE_JOB.get(kind, "prepare")}

    def one(match: re.Match[str]) -> str:
        assert match.group(1) in values, f"no sample value for {match.group(0)}"
        return values[match.group(1)]

    return PLACEHOLDER.sub(one, text)


def argv_of(container: dict, kind: str) -> list[list[str]]:
    """The argument vectors the container runs, with Argo and shell variables expanded."""
    command = [*container.get("command", []), *container.get("args", [])]
    if command[:2] != ["/bin/sh", "-c"]:
        return [[_substitute(word, kind) for word in command]]
    env = {
        item["name"]: _substitute(item["value"], kind) if "value" in item else "0"
        for item in container.get("env", [])
    }
    # Plain `$NAME` / `"$NAME"` expansion is all the scripts use: textual substitution then
    # shlex splitting reproduces sh (quoted values stay one word, unquoted ones split).
    script = re.sub(r"\$([A-Z_]+)", lambda m: env.get(m.group(1), ""), command[2])
    argvs = []
    for part in script.split(";"):
        words = shlex.split(part)
        if words[:1] == ["exec"]:
            words = words[1:]
        if words and words[:2] != ["set", "-f"]:
            argvs.append(words)
    return argvs


def ldmscale_argv(argv: list[str]) -> list[str]:
    assert argv[0] == "ldmscale", f"unexpected program {argv[0]!r} in {shlex.join(argv)}"
    return argv[1:]


def _kind(doc: dict, where: str) -> str:
    if doc["kind"] == "Pod":
        return "check"
    name = where.split("/")[-1]
    return next((k for k in SAMPLE_JOB if name.startswith(k)), name)


def values_study(values: Path) -> str:
    """storage.study of a values file (what the `helm test` pod checks)."""
    import yaml

    return str((yaml.safe_load(values.read_text()) or {}).get("storage", {}).get("study", ""))


def _env(container: dict, kind: str) -> dict[str, str]:
    return {
        item["name"]: _substitute(item["value"], kind)
        for item in container.get("env", [])
        if "value" in item
    }


@pytest.mark.slow
@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_every_container_runs_a_valid_ldmscale_command(values, rendered, checks, monkeypatch):
    seen = set()
    for _, doc in rendered[values.name]:
        for where, container in checks.containers(doc):
            kind = _kind(doc, where)
            for argv in argv_of(container, kind):
                args = ldmscale_argv(argv)
                try:
                    parsed = parse(args)
                except SystemExit:
                    pytest.fail(f"{where}: `ldmscale {shlex.join(args)}` does not parse")
                seen.add(parsed.command)
                overrides = parsed.overrides if parsed.command != "run" else []
                if parsed.command == "run":
                    launch = parse_launch(parsed.argv)
                    parse_job_id(launch.training_script)
                    overrides = launch.training_script_args
                    assert overrides[-2:] == ["seed=3", "device=cuda"], where
                # The study reaches the config as given, through the container's environment.
                for name, value in _env(container, kind).items():
                    monkeypatch.setenv(name, value)
                expected = STUDY if kind != "check" else values_study(values)
                studies = [o for o in overrides if o.startswith("study=")]
                assert compose(studies).study == expected, where
    assert {"plan", "run", "check-storage"} <= seen


def _train_container(docs, checks) -> tuple[dict, dict]:
    (train,) = [d for _, d in docs if d["metadata"]["name"] == "ldmscale-train"]
    ((_, container),) = checks.containers(train)
    return train, container


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_training_launches_one_worker_per_gpu_of_its_pod(values, rendered, checks):
    _, container = _train_container(rendered[values.name], checks)
    gpus = int(next(v for k, v in container["resources"]["limits"].items() if k.endswith("/gpu")))
    (argv,) = argv_of(container, "train")
    parsed = parse_launch(parse(ldmscale_argv(argv)).argv)
    assert parsed.training_script == SAMPLE_JOB["train"]
    assert int(parsed.nproc_per_node) == gpus


def test_multi_node_training_rendezvous_at_node_0_with_each_pods_rank(rendered, checks):
    train, container = _train_container(rendered["multinode-values.yaml"], checks)
    (jobset,) = checks.jobsets(train)
    env = {e["name"]: e for e in container["env"]}
    rank_field = env["NODE_RANK"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert rank_field == "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    (argv,) = argv_of(container, "train")
    parsed = parse_launch(parse(ldmscale_argv(argv)).argv)
    nodes = jobset["spec"]["replicatedJobs"][0]["template"]["spec"]["parallelism"]
    assert int(parsed.nnodes) == nodes == 4
    assert int(parsed.nproc_per_node) == 8
    assert parsed.node_rank == 0  # the sample value of every valueFrom variable
    # Node 0's pod of the JobSet (JOBSET_NAME sampled as "0"), on the port the pod exposes.
    assert parsed.master_addr == "0-node-0-0.0"
    assert {"name": "rendezvous", "containerPort": parsed.master_port} in container["ports"]


def test_a_misspelled_subcommand_fails_the_check(rendered, checks):
    (_, plan), *_ = [
        (p, d)
        for p, d in rendered["default-values.yaml"]
        if d["metadata"]["name"] == "ldmscale-plan"
    ]
    container = checks.deepcopy(plan["spec"]["templates"][0]["container"])
    container["args"] = [container["args"][0].replace("ldmscale plan", "ldmscale plna")]
    (argv,) = argv_of(container, "plan")
    with pytest.raises(SystemExit):
        parse(ldmscale_argv(argv))


def _template(docs, name: str) -> dict:
    return next(d for _, d in docs if d["metadata"]["name"] == name)


def test_the_sweep_dag_fans_out_exactly_the_planned_jobs(tmp_path, rendered):
    """Feed a real `ldmscale plan` of the smoke sweep through the sweep DAG's fan-out."""
    study, ids = tmp_path / "study", tmp_path / "ids"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ldmscale",
            "plan",
            "sweep=smoke",
            f"study={study}",
            "--ids-dir",
            str(ids),
        ],
        check=True,
        capture_output=True,
    )
    outputs = {path.stem: path.read_text() for path in ids.glob("*.json")}
    planned = {job["id"] for job in json.loads((study / "plan.json").read_text())["jobs"]}

    docs = rendered["default-values.yaml"]
    plan_outputs = _template(docs, "ldmscale-plan")["spec"]["templates"][0]["outputs"]
    files = {p["name"]: Path(p["valueFrom"]["path"]).stem for p in plan_outputs["parameters"]}
    params = {name: outputs[stem] for name, stem in files.items()}
    evaluate = _template(docs, "ldmscale-evaluate")["spec"]["templates"][0]["dag"]["tasks"]

    def resolve(text: str, scope: dict[str, str]) -> str:
        return PLACEHOLDER.sub(lambda m: scope[m.group(1)], text)

    fanned = set()
    for task in _template(docs, "ldmscale-sweep")["spec"]["templates"][0]["dag"]["tasks"]:
        if "withParam" not in task:
            continue
        scope = {f"tasks.plan.outputs.parameters.{k}": v for k, v in params.items()}
        for item in json.loads(resolve(task["withParam"], scope)):
            args = {
                p["name"]: resolve(p["value"], {**scope, "item": item})
                for p in task["arguments"]["parameters"]
            }
            if "job" in args:
                fanned.add(args["job"])
                continue
            # The evaluate task: shards of one configuration, then its merge.
            inner = {f"inputs.parameters.{k}": v for k, v in args.items()}
            for sub in evaluate:
                count = int(resolve(sub.get("withSequence", {}).get("count", "1"), inner))
                for index in range(count):
                    value = sub["arguments"]["parameters"][0]["value"]
                    fanned.add(resolve(value, {**inner, "item": str(index)}))
    assert fanned == planned
    for job_id in fanned:
        parse_job_id(job_id)
