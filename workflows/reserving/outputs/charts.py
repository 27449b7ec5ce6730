"""PNG charts: the factor heat map, latest and ultimate by origin, the bootstrap histogram.

PNGs carry no software or date metadata, so the same data gives the same bytes.
matplotlib and numpy are imported inside the functions.
"""

from __future__ import annotations

import itertools
import math

from workflows.reserving.outputs.files import CHART_DPI, png
from workflows.reserving.results import ReserveResult, percentile_key
from workflows.reserving.working_paper import reserve_ranges

HEATMAP_COLOUR_CAP = math.log(3.0)
METHOD_TITLES = {
    "chain_ladder": "Chain ladder (Mack)",
    "bornhuetter_ferguson": "Bornhuetter-Ferguson",
    "benktander": "Benktander",
    "cape_cod": "Cape Cod",
    "bootstrap_odp": "ODP bootstrap",
}


def render_heatmap_png(analysis: dict, *, title: str | None = None) -> bytes:
    """Return a PNG heat map of the age-to-age factors of ``triangle_analysis``.

    Each cell is coloured by its factor relative to the period's volume-weighted average,
    so outliers stand out in every period alike; the two averages are the bottom rows.
    """
    import numpy as np
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.figure import Figure

    origins = analysis["origins"]
    periods = [period["label"] for period in analysis["periods"]]
    volume = analysis["averages"]["volume"]
    simple = analysis["averages"]["simple"]
    rows = [entry["factors"] for entry in analysis["age_to_age"]]
    labels = [*origins, "Simple avg", "Volume avg"]
    shown = [*rows, simple, volume]

    relative = np.full((len(labels), len(periods)), np.nan)
    for i, factors in enumerate(rows):
        for j, factor in enumerate(factors):
            if factor is not None and volume[j] and factor > 0 and volume[j] > 0:
                relative[i, j] = math.log(factor / volume[j])
    # A single wild factor (RAA 1982: 40.4) must not wash out the rest: cap the scale at ×3.
    largest = float(np.nanmax(np.abs(relative))) if np.isfinite(relative).any() else 0.0
    spread = min(max(largest, 0.01), HEATMAP_COLOUR_CAP)

    width = max(6.0, 0.75 * len(periods) + 2.5)
    height = max(4.0, 0.32 * len(labels) + 1.8)
    figure = Figure(figsize=(width, height), dpi=CHART_DPI)
    axes = figure.add_subplot()
    axes.set_facecolor("#f0f0f0")
    image = axes.imshow(
        np.ma.masked_invalid(relative),
        cmap="RdBu_r",
        norm=TwoSlopeNorm(vcenter=0.0, vmin=-spread, vmax=spread),
        aspect="auto",
        interpolation="nearest",
    )
    for i, factors in enumerate(shown):
        for j, factor in enumerate(factors):
            if factor is not None:
                weight = "bold" if i >= len(rows) else "normal"
                dark = math.isfinite(relative[i, j]) and abs(relative[i, j]) > 0.6 * spread
                axes.text(
                    j,
                    i,
                    f"{factor:.3f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    fontweight=weight,
                    color="white" if dark else "black",
                )
    axes.axhline(len(rows) - 0.5, color="black", linewidth=1)
    axes.set_xticks(range(len(periods)), labels=periods, rotation=45, ha="right", fontsize=8)
    axes.set_yticks(range(len(labels)), labels=labels, fontsize=8)
    axes.set_xlabel("Development period", fontsize=9)
    axes.set_ylabel("Origin", fontsize=9)
    axes.set_title(title or f"Age-to-age factors ({analysis['measure']})", fontsize=10)
    colorbar = figure.colorbar(image, ax=axes)
    colorbar.set_label("log(factor / volume-weighted average)", fontsize=8)
    colorbar.ax.tick_params(labelsize=7)
    figure.tight_layout()
    return png(figure)


def render_reserve_chart_png(result: ReserveResult, *, title: str | None = None) -> bytes:
    """Return a PNG bar chart of latest and ultimate by origin.

    The error bars span the IBNR's lowest to highest percentile added to the latest:
    the bootstrap's simulated ones, or a lognormal's with the IBNR as mean and Mack's
    standard error as standard deviation (chain ladder), so no bar reaches below the
    latest (a negative IBNR) as ±1 standard error would; the other methods have none.
    """
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    origins = [origin.origin for origin in result.origins]
    positions = np.arange(len(origins))
    latest = [origin.latest for origin in result.origins]
    ultimate = [origin.ultimate for origin in result.origins]
    ranges = {r.label: r.percentiles for r in reserve_ranges(result.to_dict())}
    errors = None
    error_label = "Ultimate"
    if ranges and (result.bootstrap is not None or result.method == "chain_ladder"):
        below, above = [], []
        for origin in result.origins:
            levels = ranges.get(origin.origin)
            low = origin.latest + levels[0][1] if levels else origin.ultimate
            high = origin.latest + levels[-1][1] if levels else origin.ultimate
            below.append(max(origin.ultimate - low, 0.0))
            above.append(max(high - origin.ultimate, 0.0))
        errors = [below, above]
        first, last = next(iter(ranges.values()))[0][0], next(iter(ranges.values()))[-1][0]
        source = "bootstrap" if result.bootstrap is not None else "lognormal, Mack S.E."
        error_label = (
            f"Ultimate; bars: IBNR P{percentile_key(first)}–P{percentile_key(last)} ({source})"
        )

    figure = Figure(figsize=(max(6.0, 0.6 * len(origins) + 2.0), 4.5), dpi=CHART_DPI)
    axes = figure.add_subplot()
    bar_width = 0.4
    axes.bar(positions - bar_width / 2, latest, bar_width, label="Latest", color="#7f9fbf")
    axes.bar(
        positions + bar_width / 2,
        ultimate,
        bar_width,
        yerr=errors,
        capsize=3 if errors else 0,
        label=error_label,
        color="#1f4e79",
        error_kw={"ecolor": "#c00000", "elinewidth": 1},
    )
    axes.set_xticks(positions, labels=origins, rotation=45, ha="right", fontsize=8)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    axes.tick_params(axis="y", labelsize=8)
    axes.set_xlabel("Origin", fontsize=9)
    axes.set_ylabel(result.measure.capitalize(), fontsize=9)
    totals = result.totals
    name = METHOD_TITLES.get(result.method, result.method)
    if totals.mack_se is not None:
        spread = f", Mack S.E. {totals.mack_se:,.0f}"
    elif totals.ibnr_std is not None:
        spread = f", std. dev. {totals.ibnr_std:,.0f}"
    elif result.method == "chain_ladder":
        spread = ", Mack S.E. n/a"
    else:
        spread = ""
    axes.set_title(title or f"{name}: IBNR {totals.ibnr:,.0f}{spread}", fontsize=10)
    axes.legend(fontsize=8, loc="upper left")
    axes.grid(axis="y", linewidth=0.3)
    axes.set_axisbelow(True)
    figure.tight_layout()
    return png(figure)


def render_histogram_png(result: ReserveResult, *, title: str | None = None) -> bytes:
    """Return a PNG histogram of the bootstrap's simulated total IBNR with its percentiles."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    summary = result.bootstrap
    if summary is None:
        raise ValueError("a histogram needs a bootstrap result")
    edges = list(summary.histogram_edges)
    counts = list(summary.histogram_counts)
    figure = Figure(figsize=(7.0, 4.5), dpi=CHART_DPI)
    axes = figure.add_subplot()
    widths = [b - a for a, b in itertools.pairwise(edges)]
    axes.bar(edges[:-1], counts, width=widths, align="edge", color="#7f9fbf", edgecolor="#1f4e79")
    totals = result.totals
    for level, value in totals.percentiles or ():
        axes.axvline(value, color="#c00000", linewidth=0.8, linestyle="--")
        axes.text(
            value,
            max(counts) * 0.98 if counts else 0,
            f"P{percentile_key(level)}",
            rotation=90,
            ha="right",
            va="top",
            fontsize=7,
            color="#c00000",
        )
    axes.axvline(
        totals.ibnr, color="black", linewidth=1.0, label=f"Chain ladder IBNR {totals.ibnr:,.0f}"
    )
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    axes.tick_params(labelsize=8)
    axes.set_xlabel("Total IBNR", fontsize=9)
    axes.set_ylabel("Simulations", fontsize=9)
    mean = totals.ibnr_mean or 0.0
    std = totals.ibnr_std or 0.0
    axes.set_title(
        title
        or f"ODP bootstrap, {summary.n_sims:,} simulations: mean {mean:,.0f}, std. dev. {std:,.0f}",
        fontsize=10,
    )
    axes.legend(fontsize=8, loc="upper right")
    figure.tight_layout()
    return png(figure)
