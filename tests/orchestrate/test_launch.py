"""The launcher's exit-code mapping, its rendezvous settings (built by torchrun's own parser and
config), and the checks of `ldmscale run`'s launcher options. Real launches are in
tests/cli/test_run.py."""

from __future__ import annotations

import signal

import pytest
from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

from ldmscale.cli.main import main
from ldmscale.orchestrate.launch import distributed, exit_code, parse_launch


def _failed(*codes: int) -> ChildFailedError:
    failures = {
        rank: ProcessFailure(local_rank=rank, pid=1000 + rank, exitcode=code, error_file="")
        for rank, code in enumerate(codes)
    }
    return ChildFailedError("ldmscale run", failures)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (None, 0),
        (_failed(2), 2),
        (_failed(75), 75),
        (_failed(75, 2), 2),  # a bad configuration is never retried
        (_failed(1, 75), 75),
        (_failed(1), 1),
        (_failed(-9), 1),  # a worker killed (e.g. out of memory)
        (SignalException("SIGTERM", sigval=signal.SIGTERM), 75),
        (SignalException("SIGINT", sigval=signal.SIGINT), 1),
        (RuntimeError("rendezvous timed out"), 1),
    ],
)
def test_exit_code_of_a_launch(error: BaseException | None, code: int) -> None:
    assert exit_code(error) == code


def _config(*argv: str):
    from torch.distributed.run import config_from_args

    args = parse_launch([*argv, "train/debug", "study=x"])
    config, _, _ = config_from_args(args)
    return args, config


def test_one_node_is_standalone_on_a_free_port() -> None:
    args, config = _config("--nproc-per-node", "4")
    assert distributed(args)
    assert (config.rdzv_backend, config.rdzv_endpoint) == ("c10d", "localhost:0")
    assert (config.min_nodes, config.max_nodes, config.nproc_per_node) == (1, 1, 4)
    assert config.max_restarts == 0  # the cluster retries, resuming from the checkpoint
    assert (args.training_script, args.training_script_args) == ("train/debug", ["study=x"])


def test_several_nodes_meet_at_the_master_with_their_rank() -> None:
    argv = ["--nproc-per-node", "8", "--nnodes", "4", "--node-rank", "3"]
    _, config = _config(*argv, "--master-addr", "node-0", "--master-port", "29500")
    assert (config.rdzv_backend, config.rdzv_endpoint) == ("static", "node-0:29500")
    assert config.rdzv_configs["rank"] == 3
    assert (config.min_nodes, config.max_nodes) == (4, 4)


def test_one_process_runs_in_process() -> None:
    assert not distributed(parse_launch(["train/debug"]))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--nproc-per-node", "0"], "--nproc-per-node=0"),
        (["--nproc-per-node", "x"], "--nproc-per-node=x: use a number >= 1 or one of auto"),
        (["--nnodes", "2", "--node-rank", "2"], "--node-rank=2"),
    ],
)
def test_bad_launcher_options_are_named(argv: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_launch([*argv, "train/debug"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nproc-per-node", "0", "train/debug"], "--nproc-per-node=0"),
        (["--nproc-per-node", "x", "train/debug"], "--nproc-per-node=x"),
        (["--nproc-per-node", "2", "analyze"], "only train, distill, dreambooth jobs"),
        (["--nnodes", "2", "--node-rank", "5", "train/debug"], "--node-rank=5"),
    ],
)
def test_run_refuses_bad_launcher_options_with_2(
    args: list[str], message: str, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = tmp_path / "study"
    assert main(["run", *args, f"study={study}"]) == 2
    assert message in capsys.readouterr().err
    assert not study.exists()
