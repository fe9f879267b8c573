#!/usr/bin/env python3
"""Count the FUSE requests in memfs traces and report the write-methods experiment.

  count.py count TRACE [--mode M --method X --wall-ms MS --status S --verified V]
      Streams one trace (memfs JSON Lines) and prints one JSON object: calls per op,
      non-ok results per op, total FUSE time, versions committed, bytes written, and
      the run's metadata given on the command line.

  count.py report RUNS.jsonl --mib N --out DIR [--kernel K]
      Reads the objects printed by `count` (one per line) and writes DIR/results.md
      (one Markdown table per cache mode), DIR/results.json (everything) and
      DIR/write-methods.svg (a bar chart, log scale); prints the Markdown.

Only the standard library; the SVG is written by hand.
"""

import argparse
import json
import math
import sys
from html import escape

# Per-mount requests that every run has exactly once; counted, but left out of
# the tables' totals so that the totals are what the writer caused.
PER_MOUNT = ("init", "destroy")
# Column order for the ops the brief names; any other op follows alphabetically.
OP_ORDER = ["write", "flush", "fsync", "release", "open", "create", "getattr",
            "setattr", "lookup", "getxattr", "access"]
METHOD_ORDER = ["big-fsync", "big", "chunks-fsync", "buffered", "per-line", "append"]
MODE_ORDER = ["writeback", "no-writeback"]
MODE_TITLE = {
    "writeback": "writeback cache (default)",
    "no-writeback": "no writeback cache (--no-writeback-cache)",
}
MIB = 1 << 20


def count_trace(path):
    ops, errors, dur_by_op = {}, {}, {}
    versions, max_version, records, fuse_ns = 0, 0, 0, 0
    write_bytes = write_max = 0
    write_min = None
    header = None
    with open(path, "r", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise SystemExit(f"count.py: {path}:{lineno}: not JSON: {e}")
            if lineno == 1:
                if "memfs_trace" not in rec:
                    raise SystemExit(f"count.py: {path}: no memfs trace header on line 1")
                header = rec
                continue
            if "process" in rec:
                continue  # a pid's name (trace format 2), not a request
            op = rec.get("op", "?")
            records += 1
            ops[op] = ops.get(op, 0) + 1
            dur = int(rec.get("dur_ns", 0))
            fuse_ns += dur
            dur_by_op[op] = dur_by_op.get(op, 0) + dur
            result = rec.get("result", "ok")
            if result != "ok":
                errors.setdefault(op, {})
                errors[op][result] = errors[op].get(result, 0) + 1
            if rec.get("version") is not None:
                versions += 1
                max_version = max(max_version, int(rec["version"]))
            if op == "write" and result == "ok":
                b = int(rec.get("bytes", rec.get("size", 0)))
                write_bytes += b
                write_max = max(write_max, b)
                write_min = b if write_min is None else min(write_min, b)
    if header is None:
        raise SystemExit(f"count.py: {path}: empty trace")
    return {
        "trace": path,
        "records": records,
        "ops": ops,
        "errors": errors,
        "fuse_ns": fuse_ns,
        "fuse_ns_by_op": dur_by_op,
        "versions": versions,
        "max_version": max_version,
        "write_bytes": write_bytes,
        "write_min": write_min or 0,
        "write_max": write_max,
        "memfs_version": header.get("memfs_version"),
    }


def op_sort_key(op):
    return (OP_ORDER.index(op), "") if op in OP_ORDER else (len(OP_ORDER), op)


def order_key(order, x):
    return (order.index(x), "") if x in order else (len(order), x)


def writer_calls(run):
    return sum(n for op, n in run["ops"].items() if op not in PER_MOUNT)


def error_count(run):
    return sum(n for op, byres in run["errors"].items() for n in byres.values())


def fmt_int(n):
    return f"{n:,}"


def markdown(runs, ops, mib, kernel):
    out = []
    modes = sorted({r["mode"] for r in runs}, key=lambda m: order_key(MODE_ORDER, m))
    for mode in modes:
        rows = sorted((r for r in runs if r["mode"] == mode),
                      key=lambda r: order_key(METHOD_ORDER, r["method"]))
        out.append(f"### {MODE_TITLE.get(mode, mode)}: {mib} MiB per run")
        out.append("")
        head = ["method", "wall ms", "FUSE calls"] + ops + \
               ["versions", "FUSE ms", "errors", "bytes/write", "status"]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 2) + ["---"]) + "|")
        for r in rows:
            nwrite = r["ops"].get("write", 0)
            per_write = fmt_int(round(r["write_bytes"] / nwrite)) if nwrite else "-"
            status = r.get("status", "ok")
            if r.get("verified") not in (None, "", "yes"):
                status += f", content {r['verified']}"
            if r["write_bytes"] != mib * MIB:
                status += f", wrote {r['write_bytes']} B"
            cells = [r["method"], f"{r['wall_ms']:.0f}", fmt_int(writer_calls(r))]
            cells += [fmt_int(r["ops"].get(op, 0)) for op in ops]
            cells += [fmt_int(r["versions"]), f"{r['fuse_ns'] / 1e6:.1f}",
                      fmt_int(error_count(r)), per_write, status]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    errs = sorted({f"{op} {res}" for r in runs for op, byres in r["errors"].items()
                   for res in byres})
    notes = [
        f"FUSE calls: all requests in the trace except the {len(PER_MOUNT)} per-mount "
        f"ones ({', '.join(PER_MOUNT)}, once each). versions: flush/fsync/release "
        "replies that committed a version. FUSE ms: summed request durations as memfs "
        "measured them. bytes/write: mean size of the FUSE writes. errors: non-ok replies"
        + (f" ({', '.join(errs)})" if errs else "") + ". wall ms: the writer process, "
        "from start to exit (includes ~15 ms generating the text in memory).",
    ]
    if kernel:
        notes.append(f"Kernel {kernel}.")
    out.append(" ".join(notes))
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------- SVG

PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
           "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#1f77b4", "#8c564b"]


def svg_chart(runs, ops, mib):
    modes = sorted({r["mode"] for r in runs}, key=lambda m: order_key(MODE_ORDER, m))
    methods = sorted({r["method"] for r in runs}, key=lambda m: order_key(METHOD_ORDER, m))
    by = {(r["mode"], r["method"]): r for r in runs}
    color = {op: PALETTE[i % len(PALETTE)] for i, op in enumerate(ops)}

    # The bars of a method: the ops that method caused in any mode, so that the
    # panels' rows line up.
    rows_of = {m: [op for op in ops if any(by.get((mode, m), {"ops": {}})["ops"].get(op, 0)
                                           for mode in modes)] for m in methods}
    vmax = max([1] + [n for r in runs for op, n in r["ops"].items() if op in ops])
    decades = max(1, math.ceil(math.log10(vmax) + 0.05))
    lo = math.log10(0.5)  # the axis starts at 0.5 so that a count of 1 has a visible bar

    bar_h, bar_gap, group_head, group_gap = 12, 3, 20, 12
    label_w, plot_w, value_w, panel_gap = 80, 360, 58, 30
    panel_w = label_w + plot_w + value_w
    left, top = 20, 106
    width = left * 2 + panel_w * len(modes) + panel_gap * (len(modes) - 1)

    def x_of(v):
        return plot_w * (math.log10(v) - lo) / (decades - lo) if v > 0 else 0

    body = []
    y = top + 34  # below the panel titles and the axis labels
    group_y = {}
    for m in methods:
        group_y[m] = y
        y += group_head + len(rows_of[m]) * (bar_h + bar_gap) + group_gap
    plot_bottom = y - group_gap + 4
    height = plot_bottom + 30

    title = f"FUSE calls per writing method ({mib} MiB)"
    body.append(f'<text x="{width / 2}" y="30" class="title">{escape(title)}</text>')
    body.append(f'<text x="{width / 2}" y="50" class="sub">requests memfs received per '
                f'run, by op (log scale); group header: total calls and writer wall time'
                f'</text>')

    # Legend: one row, centred; wraps if too wide.
    items = [(op, color[op]) for op in ops]
    item_w = [22 + 7.2 * len(op) + 14 for op, _ in items]
    rows, cur, cur_w = [], [], 0
    for it, w in zip(items, item_w):
        if cur and cur_w + w > width - 2 * left:
            rows.append((cur, cur_w))
            cur, cur_w = [], 0
        cur.append((it, w))
        cur_w += w
    rows.append((cur, cur_w))
    ly = 64
    for row, row_w in rows:
        lx = (width - row_w) / 2
        for (op, c), w in row:
            body.append(f'<rect x="{lx:.1f}" y="{ly}" width="14" height="12" fill="{c}"/>')
            body.append(f'<text x="{lx + 19:.1f}" y="{ly + 10.5}" class="legend">{escape(op)}</text>')
            lx += w
        ly += 18
    shift = ly - 64 - 18  # extra legend rows push the plot down
    height += shift

    for pi, mode in enumerate(modes):
        px = left + pi * (panel_w + panel_gap)
        ax = px + label_w
        g = [f'<g transform="translate(0,{shift})">']
        g.append(f'<text x="{ax + plot_w / 2}" y="{top}" class="panel">'
                 f'{escape(MODE_TITLE.get(mode, mode))}</text>')
        # Axis: gridlines and labels at each decade.
        for d in range(0, decades + 1):
            gx = ax + x_of(10 ** d)
            lab = {0: "1", 1: "10", 2: "100", 3: "1k", 4: "10k", 5: "100k", 6: "1M",
                   7: "10M"}.get(d, f"1e{d}")
            g.append(f'<line x1="{gx:.1f}" y1="{top + 22}" x2="{gx:.1f}" y2="{plot_bottom}" '
                     f'class="grid"/>')
            g.append(f'<text x="{gx:.1f}" y="{top + 18}" class="tick">{lab}</text>')
            g.append(f'<text x="{gx:.1f}" y="{plot_bottom + 14}" class="tick">{lab}</text>')
        g.append(f'<line x1="{ax}" y1="{top + 22}" x2="{ax}" y2="{plot_bottom}" class="axis"/>')
        for m in methods:
            r = by.get((mode, m))
            gy = group_y[m]
            if r is None:
                g.append(f'<text x="{px}" y="{gy + 13}" class="method">{escape(m)}: no run</text>')
                continue
            bad = r.get("status", "ok") != "ok" or r.get("verified") not in (None, "", "yes")
            info = f"{fmt_int(writer_calls(r))} calls, {r['wall_ms']:.0f} ms"
            if bad:
                info += " (FAILED)"
            g.append(f'<text x="{px}" y="{gy + 13}" class="method">{escape(m)}</text>')
            g.append(f'<text x="{px + 118}" y="{gy + 13}" class="info">{escape(info)}</text>')
            by_y = gy + group_head
            for op in rows_of[m]:
                n = r["ops"].get(op, 0)
                g.append(f'<text x="{ax - 5}" y="{by_y + bar_h - 2}" class="oplabel">'
                         f'{escape(op)}</text>')
                w = x_of(n)
                if n:
                    g.append(f'<rect x="{ax}" y="{by_y}" width="{w:.1f}" height="{bar_h}" '
                             f'fill="{color[op]}"><title>{escape(op)}: {n}</title></rect>')
                g.append(f'<text x="{ax + w + 4:.1f}" y="{by_y + bar_h - 2}" '
                         f'class="{"value" if n else "zero"}">{fmt_int(n)}</text>')
                by_y += bar_h + bar_gap
        g.append('</g>')
        body.extend(g)

    style = """
  text { font-family: 'DejaVu Sans', Arial, Helvetica, sans-serif; fill: #222; }
  .title { font-size: 19px; font-weight: bold; text-anchor: middle; }
  .sub { font-size: 12px; text-anchor: middle; fill: #555; }
  .panel { font-size: 14px; font-weight: bold; text-anchor: middle; }
  .legend { font-size: 12px; }
  .tick { font-size: 10px; text-anchor: middle; fill: #666; }
  .grid { stroke: #ddd; stroke-width: 1; }
  .axis { stroke: #888; stroke-width: 1; }
  .method { font-size: 13px; font-weight: bold; }
  .info { font-size: 11.5px; fill: #555; }
  .oplabel { font-size: 10.5px; text-anchor: end; fill: #444; }
  .value { font-size: 10.5px; fill: #222; }
  .zero { font-size: 10.5px; fill: #999; }
"""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">\n<style>{style}</style>\n'
            f'<rect width="100%" height="100%" fill="white"/>\n'
            + "\n".join(body) + "\n</svg>\n")


# ---------------------------------------------------------------------------- main

def cmd_count(a):
    res = count_trace(a.trace)
    res.update({"mode": a.mode, "method": a.method, "wall_ms": a.wall_ms,
                "status": a.status, "verified": a.verified})
    json.dump(res, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")


def cmd_report(a):
    runs = []
    with open(a.runs, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                runs.append(json.loads(line))
    if not runs:
        raise SystemExit("count.py: no runs to report")
    ops = sorted({op for r in runs for op in r["ops"] if op not in PER_MOUNT},
                 key=op_sort_key)
    md = markdown(runs, ops, a.mib, a.kernel)
    with open(f"{a.out}/results.md", "w", encoding="utf-8") as f:
        f.write(f"# write-methods results\n\n{md}")
    with open(f"{a.out}/results.json", "w", encoding="utf-8") as f:
        json.dump({"mib": a.mib, "kernel": a.kernel, "ops": ops, "runs": runs}, f,
                  indent=1, sort_keys=True)
        f.write("\n")
    with open(f"{a.out}/write-methods.svg", "w", encoding="utf-8") as f:
        f.write(svg_chart(runs, ops, a.mib))
    sys.stdout.write(md)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("count", help="count one trace")
    c.add_argument("trace")
    c.add_argument("--mode", default="")
    c.add_argument("--method", default="")
    c.add_argument("--wall-ms", type=float, default=0.0)
    c.add_argument("--status", default="ok")
    c.add_argument("--verified", default="")
    c.set_defaults(func=cmd_count)
    r = sub.add_parser("report", help="tables, JSON and SVG from counted runs")
    r.add_argument("runs")
    r.add_argument("--mib", type=int, required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--kernel", default="")
    r.set_defaults(func=cmd_report)
    a = p.parse_args()
    a.func(a)


if __name__ == "__main__":
    main()
