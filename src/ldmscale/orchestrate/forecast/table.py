"""The forecast as text: one table of rows (prepare, train per size, sampling per size, merge,
analyze), the stages and totals, optionally every sampling configuration, then the
assumptions. What `ldmscale forecast` prints without `--json`."""

from __future__ import annotations

from ldmscale.orchestrate.forecast.record import ConfigRow, Forecast, Row


def duration(seconds: float) -> str:
    """`12.3 s`, `4m 05s`, `3h 05m`, `12.4 d`: short, and exact enough to compare."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m {int(seconds % 60):02d}s"
    if seconds < 48 * 3600:
        return f"{int(seconds // 3600)}h {int(seconds % 3600 // 60):02d}m"
    return f"{seconds / 86400:.1f} d"


def flops(value: float) -> str:
    """FLOPs with an SI prefix: `3.1 PFLOP`."""
    for scale, prefix in ((1e21, "Z"), (1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G")):
        if value >= scale:
            return f"{value / scale:.3g} {prefix}FLOP"
    return f"{value:.3g} FLOP" if value else "-"


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _hours(value: float) -> str:
    return f"{value:,.1f}" if value >= 10 else f"{value:.3g}"


def _header(width: int) -> str:
    columns = f"{'jobs':>7} {'time':>10} {'acc-hours':>10} {'U-Net work':>12} {'cost':>12}"
    return f"{'row':<{width}} {columns}"


def _line(name: str, row: Row | ConfigRow, jobs: int, width: int) -> str:
    return (
        f"{name:<{width}} {jobs:>7,} {duration(row.seconds):>10} "
        f"{_hours(row.accelerator_hours):>10} {flops(row.flops):>12} {_money(row.cost):>12}"
    )


def render(result: Forecast, by_config: bool = False) -> str:
    """The forecast table; `by_config` adds a row per sampling configuration."""
    p, t = result.profile, result.totals
    names = [row.group for row in result.rows] + [f"stage {row.stage}" for row in result.stages]
    width = max(28, *map(len, names))  # every row's name in its column, however long
    lines = [
        f"forecast: sweep {result.sweep} on profile {p['name']} ({p['source']}), "
        f"{t.jobs:,} jobs, U-Nets at {result.shape}",
        "",
        _header(width),
    ]
    lines += [_line(row.group, row, row.jobs, width) for row in result.rows]
    lines.append("")
    lines += [_line(f"stage {row.stage}", row, row.jobs, width) for row in result.stages]
    total = Row("total", "total", t.jobs, t.seconds, t.accelerator_hours, t.flops, t.cost)
    lines.append(_line("total, one job at a time", total, t.jobs, width))
    lines.append(f"critical path (unlimited parallel jobs): {duration(t.critical_path_seconds)}")
    if t.wall_seconds is not None:
        lines.append(f"wall time with {t.accelerators} accelerators: >= {duration(t.wall_seconds)}")
    if result.price_per_hour is not None:
        lines.append(f"price: {result.price_per_hour:g} per accelerator-hour")
    if by_config:
        labels = [f"{c.config} ({c.evaluations}x{c.passes})" for c in result.configs]
        wide = max(28, *map(len, labels)) if labels else 28
        lines += ["", "sampling configurations (evaluations x passes per image):", _header(wide)]
        lines += [
            _line(name, c, c.shards, wide) for name, c in zip(labels, result.configs, strict=True)
        ]
    if result.not_forecast:
        lines.append("not forecast: " + ", ".join(result.not_forecast))
    lines += ["", "assumptions:", *(f"- {a}" for a in result.assumptions)]
    return "\n".join(lines)
