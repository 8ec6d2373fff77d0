"""Every class of bad input a user or a pod gives: exit 2, the bad value named (with the valid
choices where there are any), and nothing written to the study."""

from __future__ import annotations

from pathlib import Path

from campaign import FAST, Campaign
from harness import copy_study, ldmscale

EVAL = ["model=debug", "sampler=ddim", "sampler.steps=4", "sampler.guidance=2"]
EVAL_ID = "eval/debug/step-20/ddim-s4-g2/shard-0-of-2"
CASES: list[tuple[str, list[str], tuple[str, ...]]] = [
    ("unknown storage protocol", ["train", "study=foo://x"], ("'foo'", "s3://")),
    ("'::' chained URI", ["plan", "sweep=debug", "study=memory::s3://b/x"], ("'::'",)),
    ("no study", ["train"], ("study=<URI> is required",)),
    ("unknown sweep", ["plan", "sweep=nope", "STUDY"], ("sweep/nope", "smoke")),
    ("unknown model", ["train", "model=zz", "STUDY"], ("model/zz", "t16")),
    ("unknown sampler", ["eval", "sampler=plms", "STUDY"], ("sampler/plms", "ddim")),
    ("mistyped value", ["train", "train.max_steps=abc", "STUDY"], ("train.max_steps", "'abc'")),
    ("unknown key", ["train", "train.foo=1", "STUDY"], ("train.foo", "max_steps")),
    ("zero steps", ["eval", *EVAL, "sampler.steps=0", "STUDY"], ("sampler.steps=0",)),
    ("one sample", ["plan", "sweep=debug", "eval.num_samples=1", "STUDY"], ("eval.num_samples=1",)),
    (
        "more shards than samples",
        ["plan", "sweep=debug", "sweep.shards=3", "eval.num_samples=2", "STUDY"],
        ("sweep.shards=3",),
    ),
    (
        "shard out of range",
        ["eval", *EVAL, "eval.shard=3/3", "STUDY"],
        ("eval.shard='3/3'", "0..2"),
    ),
    (
        "guidance below 1",
        ["eval", *EVAL, "sampler.guidance=0.5", "STUDY"],
        ("sampler.guidance=0.5",),
    ),
    ("guidance NaN", ["eval", *EVAL, "sampler.guidance=nan", "STUDY"], ("sampler.guidance=nan",)),
    ("guidance infinite", ["eval", *EVAL, "sampler.guidance=inf", "STUDY"], ("guidance=inf",)),
    (
        "steps past the schedule",
        ["eval", *EVAL, "sampler=dpmpp_2m", "sampler.steps=1001", "STUDY"],
        ("sampler.steps=1001", "at most 1000"),
    ),
    (
        "leading steps past the schedule",
        ["eval", *EVAL, "sampler.timestep_spacing=leading", "sampler.steps=1000", "STUDY"],
        ("sampler.steps=1000", "at most 999"),
    ),
    (
        "sweep steps past the schedule",
        ["plan", "sweep=debug", "sweep.steps=[4,1001]", "STUDY"],
        ("sweep.steps=1001", "at most 1000"),
    ),
    ("learning rate NaN", ["train", "train.lr=nan", "STUDY"], ("train.lr=nan",)),
    ("log every 0 steps", ["plan", "sweep=debug", "train.log_every=0", "STUDY"], ("log_every=0",)),
    (
        "storage timeout NaN",
        ["plan", "sweep=debug", "storage.timeout=nan", "STUDY"],
        ("storage.timeout=nan",),
    ),
    (
        "beta schedule no sampler has",
        ["plan", "sweep=debug", "train.beta_schedule=sigmoid", "STUDY"],
        ("train.beta_schedule='sigmoid'", "scaled_linear"),
    ),
    (
        "missing Inception weights",
        ["eval", *EVAL, "eval.feature_extractor=inception", "eval.inception_weights=/no", "STUDY"],
        ("eval.inception_weights='/no'",),
    ),
    (
        "missing CLIP model",
        ["eval", *EVAL, "eval.feature_extractor=clip", "eval.clip_model=/nonexistent", "STUDY"],
        ("eval.clip_model='/nonexistent'",),
    ),
    (
        "missing text encoder",
        ["train", "data.text_encoder=/nonexistent", "STUDY"],
        ("data.text_encoder='/nonexistent'",),
    ),
    (
        "interpolation of a per-job key",
        ["plan", "sweep=debug", "eval.batch_size=${sampler.steps}", "STUDY"],
        ("reads sampler.steps",),
    ),
    (
        "unknown spacing",
        ["eval", *EVAL, "sampler.timestep_spacing=karras", "STUDY"],
        ("karras", "trailing"),
    ),
    (
        "ZeRO stage 5",
        ["train", "train.zero_stage=5", "STUDY"],
        ("train.zero_stage=5", "0, 1, 2, 3"),
    ),
    (
        "batch not a multiple",
        ["train", "train.global_batch=10", "train.micro_batch=4", "STUDY"],
        ("global_batch=10",),
    ),
    (
        "EMA under ZeRO-3",
        ["train", "train.ema=true", "train.zero_stage=3", "STUDY"],
        ("train.ema",),
    ),
    (
        "bad checkpoint name",
        ["eval", *EVAL, "eval.checkpoint=last", "STUDY"],
        ("eval.checkpoint='last'",),
    ),
    ("unknown device", ["train", "device=tpu", "STUDY"], ("device='tpu'", "cuda")),
    ("CUDA without a GPU", ["prepare", "device=cuda", "STUDY"], ("device='cuda'",)),
    ("bad job id", ["run", "train/a/b", "STUDY"], ("train/a/b", "the forms are")),
    (
        "launcher with no worker",
        ["run", "--nproc-per-node", "0", "train/debug", "STUDY"],
        ("--nproc-per-node=0",),
    ),
    (
        "several processes for eval",
        ["run", "--nproc-per-node", "2", EVAL_ID, "STUDY"],
        ("only train jobs",),
    ),
    (
        "grid key on plan",
        ["plan", "sweep=debug", "sampler.steps=3", "STUDY"],
        ("sampler.steps", "sweep.steps"),
    ),
    (
        "unknown sweep model",
        ["plan", "sweep=debug", "sweep.models=[nope]", "STUDY"],
        ("sweep.models='nope'",),
    ),
    (
        "zero storage timeout",
        ["plan", "sweep=debug", "storage.timeout=0", "STUDY"],
        ("storage.timeout=0",),
    ),
    (
        "real data without URIs",
        ["prepare", "data=webdataset", "STUDY"],
        ("data.shards", "data.autoencoder"),
    ),
    (
        "paper eval without inputs",
        ["eval", "eval=coco2014_30k", "STUDY"],
        ("eval.prompt_set", "eval.clip_model"),
    ),
    ("run without a plan", ["run", "train/debug", "STUDY"], ("ldmscale plan",)),
    (
        "train an unprepared study",
        ["train", "sweep=debug", "model=debug", "PLANNED"],
        ("ldmscale prepare",),
    ),
    ("eval with no checkpoint", ["run", EVAL_ID, "PLANNED"], ("not committed",)),
    (
        "merge with no shards",
        ["run", "merge/debug/step-20/ddim-s4-g2", "PREPARED"],
        ("not committed",),
    ),
]


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.exists() else set()


def run(campaign: Campaign, cases: list[tuple[str, list[str], tuple[str, ...]]] = CASES) -> None:
    """Each case against a study of the right kind: empty, planned, or planned and prepared."""
    empty = campaign.root / "bad-empty"
    planned = campaign.root / "bad-planned"
    if not planned.exists():
        assert ldmscale("plan", "sweep=debug", f"study={planned}").code == 0
    prepared = copy_study(campaign.prepared(), campaign.root / "bad-prepared", only=("prepare",))
    assert ldmscale("plan", "sweep=debug", f"study={prepared}", *FAST).code == 0
    studies = {"STUDY": empty, "PLANNED": planned, "PREPARED": prepared}
    for name, args, named in cases:
        target = next((studies[a] for a in args if a in studies), empty)
        argv = [f"study={studies[a]}" if a in studies else a for a in args]
        if argv[0] != "run":
            # The fast prepare settings first, so that the case's own settings win.
            argv = [argv[0], *FAST, *argv[1:]]
        before = _files(target)

        def body(
            argv: list[str] = argv,
            named: tuple[str, ...] = named,
            target: Path = target,
            before: set[str] = before,
        ) -> tuple[bool, str]:
            result = ldmscale(*argv)
            missing = [text for text in named if text not in result.err]
            unchanged = _files(target) == before
            ok = result.code == 2 and not missing and unchanged and "Traceback" not in result.err
            return ok, (
                f"exit {result.code}; "
                + ("names it" if not missing else f"MISSING {missing} in: {result.err[-160:]}")
                + ("" if unchanged else "; WROTE to the study")
            )

        campaign.trial("bad input", name, "exit 2, named, nothing written", body)
