#!/usr/bin/env python
"""Chart of per-workload ratios from one or more `bench/run.py --json` results (one per interpreter).

Usage: python bench/chart.py RESULT.json [RESULT.json ...] [--out bench/ratios.png] [--protocol P]
                             [--only REGEX] [--title TEXT]

Two panels, dumps and loads; one row per workload, one marker per interpreter. The marker is the
geomean of the workload's cells over the protocols (0, 2, 4, 5 by default), and the line through it
spans the lowest to the highest of those cells, so a cliff at one protocol stays visible. With
``--protocol P`` the markers are that protocol's cells alone. The x axis is logarithmic; ratio =
reference time / pickle5_rs time, right of the 1.0 line is faster than the reference. Needs
matplotlib (``nox -s bench_chart`` installs it).
"""

import argparse
import json
import math
import re
import sys


def geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def load(path):
    with open(path) as f:
        data = json.load(f)
    if "cells" not in data:
        sys.exit("%s: no 'cells' (not written by this bench/run.py --json?)" % path)
    return data


def label(data):
    g = data.get("geomean", {})
    parts = ["Python %s (reference: %s)" % (data["python"], data.get("reference", "?"))]
    if "dumps" in g and "loads" in g:
        parts.append("geomean dumps %.2f, loads %.2f" % (g["dumps"], g["loads"]))
    lowest = data.get("lowest")
    if lowest:
        parts.append(
            "lowest %s p%d %s %.2f" % (lowest["workload"], lowest["protocol"], lowest["op"], lowest["ratio"])
        )
    if data.get("quick"):
        parts.append("--quick")
    return "; ".join(parts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", help="JSON files written by bench/run.py --json")
    parser.add_argument("--out", default="bench/ratios.png", help="PNG to write (default bench/ratios.png)")
    parser.add_argument("--protocol", type=int, default=None, help="one protocol instead of all")
    parser.add_argument("--only", action="append", default=[], metavar="REGEX", help="workloads to show")
    parser.add_argument("--title", default=None)
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401  (matplotlib.ticker below)

    runs = [load(path) for path in args.results]
    runs.sort(key=lambda d: tuple(int(x) for x in re.findall(r"\d+", d["python"])[:2]))

    workloads = []
    for data in runs:
        for cell in data["cells"]:
            name = cell["workload"]
            if name not in workloads and (not args.only or any(re.search(p, name) for p in args.only)):
                workloads.append(name)
    if not workloads:
        sys.exit("no workload to chart")
    ops = ["dumps", "loads"]

    height = max(4.0, 0.2 * len(workloads) + 1.6)
    fig, axes = plt.subplots(1, 2, figsize=(13, height), sharey=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    spread = 0.6 / max(1, len(runs))
    lo, hi = 1.0, 1.0
    for ax, op in zip(axes, ops):
        for k, data in enumerate(runs):
            offset = (k - (len(runs) - 1) / 2.0) * spread
            ys, xs, xerr_lo, xerr_hi = [], [], [], []
            for row, name in enumerate(workloads):
                ratios = [
                    c["ratio"]
                    for c in data["cells"]
                    if c["workload"] == name
                    and c["op"] == op
                    and "ratio" in c
                    and (args.protocol is None or c["protocol"] == args.protocol)
                ]
                if not ratios:
                    continue
                mid = geomean(ratios)
                ys.append(row + offset)
                xs.append(mid)
                xerr_lo.append(mid - min(ratios))
                xerr_hi.append(max(ratios) - mid)
                lo, hi = min(lo, min(ratios)), max(hi, max(ratios))
            color = colors[k % len(colors)]
            ax.errorbar(
                xs,
                ys,
                xerr=[xerr_lo, xerr_hi],
                fmt="o",
                markersize=3.5,
                color=color,
                ecolor=color,
                elinewidth=0.8,
                alpha=0.9,
                label=label(data) if op == ops[0] else None,
            )
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_title(
            op
            + (
                " (protocol %d)" % args.protocol
                if args.protocol is not None
                else " (geomean over protocols; line: lowest to highest)"
            ),
            fontsize=10,
        )
        ax.grid(axis="x", which="both", alpha=0.3)
        ax.grid(axis="y", alpha=0.15)
    candidates = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 10, 20, 50)
    if hi / lo < 4:
        candidates += (0.8, 0.9, 1.1, 1.2)
    ticks = sorted(t for t in candidates if lo / 1.3 <= t <= hi * 1.3)
    for ax in axes:
        ax.set_xlim(lo / 1.3, hi * 1.3)
        ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.axvspan(lo / 1.3, 1.0, color="red", alpha=0.05)
        ax.set_xlabel("reference time / pickle5_rs time (log scale; > 1: pickle5_rs faster)")
    axes[0].set_yticks(range(len(workloads)))
    axes[0].set_yticklabels(workloads, fontsize=8)
    axes[0].set_ylim(len(workloads) - 0.5, -0.5)
    title = args.title or "pickle5_rs vs the reference C pickler, per workload (bench/run.py)"
    fig.suptitle(title, fontsize=12)
    fig.legend(loc="lower center", ncol=1, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.02 + 0.025 * len(runs) * 8 / height, 1, 0.98))
    fig.savefig(args.out, dpi=100)
    print("wrote %s (%d workloads, %s)" % (args.out, len(workloads), ", ".join(d["python"] for d in runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
