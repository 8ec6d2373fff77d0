"""The chart documents every value (`# --` comments) and its README is generated from them."""

from __future__ import annotations

import chart_docs


def test_every_value_is_documented() -> None:
    assert chart_docs.undocumented() == []


def test_the_readme_is_generated_from_the_values() -> None:
    assert (chart_docs.CHART / "README.md").read_text() == chart_docs.readme(), (
        "charts/eval/README.md is stale: run `make chart-docs`"
    )


def test_an_undocumented_value_is_found(tmp_path, monkeypatch) -> None:
    chart = tmp_path / "eval"
    chart.mkdir()
    text = (chart_docs.CHART / "values.yaml").read_text()
    (chart / "values.yaml").write_text(text.replace("gpu:\n", "gpu:\n  extra: 1\n", 1))
    monkeypatch.setattr(chart_docs, "CHART", chart)
    assert chart_docs.undocumented() == ["gpu.extra"]
