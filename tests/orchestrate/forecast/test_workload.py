"""What a forecast counts before anything runs: the U-Net's input shape from the config, the
FLOPs of `ldmscale.models.cost` and the evaluations per image a diffusers scheduler makes."""

from __future__ import annotations

import pytest

from ldmscale.config import compose
from ldmscale.models.cost import forward_cost
from ldmscale.orchestrate.forecast.workload import Workload, study_shape


@pytest.mark.slow
def test_the_embedded_domain_shape_is_known_and_real_data_is_assumed_and_said() -> None:
    domain = study_shape(compose(["sweep=smoke"]))
    assert (domain.latent, domain.context, domain.tokens) == ((4, 8, 8), 384, 16)
    assert domain.assumptions == ()
    paper = study_shape(compose(["sweep=paper"]))
    assert (paper.latent, paper.context, paper.tokens) == ((4, 64, 64), 1024, 77)
    assert any("x8 autoencoder" in a for a in paper.assumptions)
    assert any("1024 wide assumed" in a for a in paper.assumptions)


@pytest.mark.slow
def test_flops_and_evaluations_come_from_the_counter_and_the_schedulers() -> None:
    work = Workload.of(compose(["sweep=smoke"]))
    params, gflops = forward_cost("t16", (4, 8, 8), 384, 16)
    assert (work.model("t16").params, work.model("t16").gflops) == (params, gflops)
    assert work.evaluations("ddim", 7) == 7
    assert work.evaluations("dpmpp_2m", 7) == 7
    # Heun's second-order steps evaluate the U-Net twice, except the last.
    assert work.evaluations("heun", 7) == 2 * 7 - 1
