"""Showing a workflow's progress as it changes: one tqdm bar per stage on a terminal, else one
line per stage change (for logs and CI, where redrawn bars are noise)."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from tqdm import tqdm

from ldmscale.cluster.progress import StageProgress, WorkflowProgress

BAR = "{desc} {bar} {n_fmt}/{total_fmt} [{elapsed}{postfix}]"
"""Items done of the total, time since following began, phase counts (no rate: items take
minutes to days)."""


def _line(stage: StageProgress) -> str:
    total = "?" if stage.total is None else str(stage.total)
    return f"{stage.name}: {stage.done}/{total} done ({stage.summary()})"


class StageBars:
    """Callable with each new `WorkflowProgress`; `close()` when following ends."""

    def __init__(self, stream: TextIO | None = None, bars: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.bars = self.stream.isatty() if bars is None else bars
        self._tqdm: dict[str, Any] = {}
        self._shown: dict[str, str] = {}
        self._phase = ""

    def __call__(self, progress: WorkflowProgress) -> None:
        """Show the workflow's progress."""
        if progress.phase != self._phase:
            self._phase = progress.phase
            if not self.bars:
                print(f"workflow {progress.name}: {progress.phase}", file=self.stream)
        for position, stage in enumerate(progress.stages):
            if self.bars:
                self._bar(position, stage)
            elif self._shown.get(stage.name) != _line(stage):
                self._shown[stage.name] = _line(stage)
                print(f"  {_line(stage)}", file=self.stream)
        if progress.finished:
            self.close()

    def _bar(self, position: int, stage: StageProgress) -> None:
        bar = self._tqdm.get(stage.name)
        if bar is None:
            bar = tqdm(
                total=stage.total,
                desc=f"{stage.name:<9}",
                bar_format=BAR,
                position=position,
                file=self.stream,
                leave=True,
            )
            self._tqdm[stage.name] = bar
        if bar.total != stage.total:
            bar.total = stage.total
        bar.n = stage.done
        bar.set_postfix_str(stage.summary(), refresh=False)
        bar.refresh()

    def close(self) -> None:
        """Close the progress bars."""
        for bar in self._tqdm.values():
            bar.close()
        self._tqdm.clear()
