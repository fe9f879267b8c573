#!/usr/bin/env python3
"""The report of scripts/bench-phases.sh: OUT/summary.md and OUT/phases.svg from OUT/raw.csv.

usage: phases_report.py OUT_DIR

Reads raw.csv (phase,target,round,wall_ms,cpu_ms,status), memory.csv
(target,round,peak_rss_bytes,stored_bytes,stored_from), phases.tsv (phase key, label) and
setup.txt. A ratio is a target's time over tmpfs's time in the same round (machine load
drifts between rounds, less within one); the tables give the median of those ratios.
"""

import csv
import io
import statistics
import sys
from pathlib import Path

BASE = "tmpfs"
COLORS = ["#1f77b4", "#9467bd", "#ff7f0e", "#d62728", "#17becf", "#8c564b", "#e377c2"]


def load(out):
    phases = [line.split("\t", 1) for line in (out / "phases.tsv").read_text().splitlines()]
    targets, rows = [], {}
    with open(out / "raw.csv") as f:
        for r in csv.DictReader(f):
            if r["target"] not in targets:
                targets.append(r["target"])
            rows[(r["phase"], r["target"], r["round"])] = r
    memory = {}
    with open(out / "memory.csv") as f:
        for r in csv.DictReader(f):
            memory.setdefault(r["target"], []).append(r)
    return phases, targets, rows, memory


def ok(r):
    return r is not None and r["status"] == "ok" and r["wall_ms"] != ""


def per_target(rows, phase, target, field):
    """(values, ratios to tmpfs of the same round, failed runs) of one phase and target."""
    values, ratios, failed = [], [], 0
    for (p, t, rnd), r in rows.items():
        if p != phase or t != target:
            continue
        if not ok(r):
            failed += 1
            continue
        v = float(r[field])
        values.append(v)
        base = rows.get((phase, BASE, rnd))
        if ok(base) and float(base[field]) > 0:
            ratios.append(v / float(base[field]))
    return values, ratios, failed


def median(xs):
    return statistics.median(xs) if xs else None


def fmt_ms(ms):
    return "—" if ms is None else f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.0f} ms"


def fmt_bytes(n):
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f} B"


def summarize(phases, targets, rows, memory):
    """{(phase, target, field): (median value, median ratio, failed)} and memory medians."""
    cells = {}
    for key, _ in phases:
        for t in targets:
            for field in ("wall_ms", "cpu_ms"):
                values, ratios, failed = per_target(rows, key, t, field)
                cells[(key, t, field)] = (median(values), median(ratios), failed)
    mem = {}
    for t in targets:
        runs = [r for r in memory.get(t, []) if r["peak_rss_bytes"] and r["stored_bytes"]]
        if runs:
            rss = [int(float(r["peak_rss_bytes"])) for r in runs]
            stored = [int(r["stored_bytes"]) for r in runs]
            mem[t] = (median(rss), median(stored),
                      median([a / b for a, b in zip(rss, stored) if b > 0]),
                      runs[0]["stored_from"])
    return cells, mem


def table(phases, targets, cells, field, mem=None):
    others = [t for t in targets if t != BASE]
    head = f"| phase | {BASE} | " + " | ".join(others) + " |"
    lines = [head, "|---|" + "---:|" * (1 + len(others))]
    for key, label in phases:
        base = cells[(key, BASE, field)]
        row = [label, fmt_ms(base[0]) + (f" !{base[2]}" if base[2] else "")]
        for t in others:
            _, ratio, failed = cells[(key, t, field)]
            row.append(("—" if ratio is None else f"{ratio:.2f}") + (f" !{failed}" if failed else ""))
        lines.append("| " + " | ".join(row) + " |")
    if mem is not None:
        row = ["peak RSS / bytes stored", "—"]
        for t in others:
            m = mem.get(t)
            row.append("—" if m is None else f"{m[2]:.2f} ({fmt_bytes(m[0])} / {fmt_bytes(m[1])})")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def spread(phases, targets, rows):
    """The lowest and highest wall-time ratio of each target over the rounds: on a shared
    machine a phase can run at two speeds, and a median alone hides which one it fell on."""
    others = [t for t in targets if t != BASE]
    lines = ["| phase | " + " | ".join(others) + " |", "|---|" + "---:|" * len(others)]
    for key, label in phases:
        row = [label]
        for t in others:
            _, ratios, _ = per_target(rows, key, t, "wall_ms")
            row.append(f"{min(ratios):.2f}–{max(ratios):.2f}" if ratios else "—")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def medians(phases, targets, cells):
    lines = ["| phase | " + " | ".join(targets) + " |", "|---|" + "---:|" * len(targets)]
    for key, label in phases:
        row = [label] + [f"{fmt_ms(cells[(key, t, 'wall_ms')][0])} / "
                         f"{fmt_ms(cells[(key, t, 'cpu_ms')][0])}" for t in targets]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def markdown(out, phases, targets, rows, cells, mem, rounds):
    setup = (out / "setup.txt").read_text().strip().splitlines()
    parts = [
        f"Wall time: {BASE}'s median, and each target's median ratio to {BASE} in the same "
        f"round ({rounds} round{'s' if rounds != 1 else ''}; lower is better; `!n`: n failed or "
        "wrong runs left out).",
        "",
        table(phases, targets, cells, "wall_ms", mem),
        "",
        "Client CPU (user + system time of the workload's own processes), the same way:",
        "",
        table(phases, targets, cells, "cpu_ms"),
        "",
        "Medians, wall time / client CPU:",
        "",
        medians(phases, targets, cells),
        "",
        f"Wall time, the lowest and highest ratio to {BASE} over the rounds:",
        "",
        spread(phases, targets, rows),
        "",
        "Bytes stored: memfs's `stored_bytes` (unique bytes after dedup, `.memfs/stats.json`) "
        "before `rm`; for the others the data's size (`du -sb`). Peak RSS: the server's VmHWM "
        "just before unmount.",
        "",
        "Setup:",
        "",
    ]
    parts += [f"    {line}" for line in setup]
    return "\n".join(parts) + "\n"


def chart(phases, targets, cells):
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        sys.exit("phases_report: matplotlib is missing: apt-get install python3-matplotlib")
    # Text as <text>, not paths: smaller files, and the labels can be searched.
    matplotlib.rcParams["svg.fonttype"] = "none"
    matplotlib.rcParams["svg.hashsalt"] = "memfs-bench-phases"
    others = [t for t in targets if t != BASE]
    labels = [key for key, _ in phases]
    fig = Figure(figsize=(max(8, 1.1 * len(labels) * max(1, len(others)) / 2 + 3), 7),
                 layout="constrained")
    axes = fig.subplots(2, 1, sharex=True)
    width = 0.8 / max(1, len(others))
    for ax, field, title in ((axes[0], "wall_ms", "wall time"),
                             (axes[1], "cpu_ms", "client CPU (user + sys)")):
        top = 1.0
        for i, t in enumerate(others):
            xs = [j + (i - (len(others) - 1) / 2) * width for j in range(len(labels))]
            ys = [cells[(key, t, field)][1] or 0 for key in labels]
            top = max([top] + ys)
            bars = ax.bar(xs, ys, width, label=t, color=COLORS[i % len(COLORS)])
            ax.bar_label(bars, labels=[f"{y:.1f}" if y else "" for y in ys],
                         padding=2, fontsize=7)
        ax.axhline(1.0, color="#2ca02c", linestyle="--", linewidth=1)
        ax.annotate(BASE, (len(labels) - 0.5, 1.0), xytext=(0, 3), textcoords="offset points",
                    color="#2ca02c", fontsize=8, ha="right")
        ax.set_ylim(0, top * 1.15)
        ax.set_ylabel(f"× {BASE}")
        ax.set_title(f"{title}: median ratio to {BASE} (lower is better)", loc="left",
                     fontweight="bold", fontsize=10)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    axes[1].set_xticks(range(len(labels)), labels)
    axes[0].legend(loc="upper left", frameon=False, fontsize=8, ncols=len(others))
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def main():
    out = Path(sys.argv[1])
    phases, targets, rows, memory = load(out)
    if BASE not in targets:
        sys.exit(f"phases_report: no {BASE} rows in {out / 'raw.csv'}")
    rounds = len({rnd for (_, _, rnd) in rows})
    cells, mem = summarize(phases, targets, rows, memory)
    md = markdown(out, phases, targets, rows, cells, mem, rounds)
    (out / "summary.md").write_text(md)
    (out / "phases.svg").write_text(chart(phases, targets, cells))
    print(md, end="")


if __name__ == "__main__":
    main()
