#!/usr/bin/env python3
"""Clone, build, walk and remove real projects on memfs, traced memfs, tmpfs and disk.

Run it through scripts/bench.sh (which builds memfs first); see README "Workloads".
Each project is a TOML file in workloads/. Its source is prepared once as a local git
repository in the cache; then, round after round, every target gets a fresh mount (or
directory) and the phases run on it:

    clone   git clone --no-local REPO MNT/src
    build   the project's configure and build commands, in MNT/src
    walk    du --apparent-size over MNT/src: one stat per entry
    rm      rm -rf MNT/src

Results go to OUT/results.json (every run plus medians), OUT/results.md and OUT/*.svg.
"""

import argparse
import functools
import io
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
PHASES = ["clone", "build", "walk", "rm"]
TARGETS = ["memfs", "memfs-trace", "tmpfs", "disk"]
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@memfs",
    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@memfs",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2000-01-01T00:00:00Z",
    "GIT_CONFIG_NOSYSTEM": "1",
}


class BenchError(Exception):
    """A problem the user can fix; printed as one line, without a traceback."""


def say(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# Child processes: each in its own process group, so an interrupt can stop a whole build.

CHILDREN = set()


def run(cmd, cwd=None, log=None, env=None, check=True):
    """Runs a shell command; its output goes to `log` (a path) or is returned."""
    full_env = dict(os.environ, **GIT_ENV, **(env or {}))
    out = open(log, "ab") if log else subprocess.PIPE
    p = subprocess.Popen(["bash", "-e", "-o", "pipefail", "-c", cmd], cwd=cwd,
                         stdout=out, stderr=subprocess.STDOUT, env=full_env,
                         start_new_session=True)
    CHILDREN.add(p)
    try:
        stdout, _ = p.communicate()
    except BaseException:  # interrupted: stop the command's whole process group
        kill_group(p)
        raise
    finally:
        CHILDREN.discard(p)
        if log:
            out.close()
    if check and p.returncode != 0:
        tail = tail_of(log) if log else (stdout or b"").decode(errors="replace")[-2000:]
        raise BenchError(f"`{cmd}` failed (exit {p.returncode}) in {cwd}:\n{tail}")
    return (stdout or b"").decode(errors="replace") if not log else ""


def tail_of(path, lines=15):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def kill_group(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        pass
    p.wait()


def stop_children():
    for p in list(CHILDREN):
        kill_group(p)


def timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


# ---------------------------------------------------------------------------------------
# Workload definitions and their sources.

def load_workload(arg):
    path = Path(arg)
    if not path.suffix:
        path = HERE / "workloads" / f"{arg}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in (HERE / "workloads").glob("*.toml"))
        raise BenchError(f"{arg}: no such workload (known: {', '.join(known)})")
    try:
        wl = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise BenchError(f"{path}: {e}")
    src, build = wl.get("source", {}), wl.get("build", {})
    if "name" not in wl or "build" not in build:
        raise BenchError(f"{path}: needs `name` and [build] `build`")
    if sum(k in src for k in ("debian", "git", "path")) != 1:
        raise BenchError(f"{path}: [source] needs exactly one of debian, git, path")
    if "path" in src and not os.path.isabs(src["path"]):
        src["path"] = str((path.parent / src["path"]).resolve())
    wl["file"] = str(path)
    return wl


def missing_packages(packages):
    missing = []
    for pkg in packages:
        q = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg],
                           capture_output=True, text=True)
        if "install ok installed" not in q.stdout:
            missing.append(pkg)
    return missing


def ensure_packages(workloads, install):
    wanted = sorted({p for wl in workloads for p in wl["build"].get("packages", [])})
    if not shutil.which("dpkg-query"):
        return
    missing = missing_packages(wanted)
    if not missing:
        return
    if not install or os.geteuid() != 0:
        raise BenchError(f"missing packages {' '.join(missing)}: "
                         f"apt-get install -y {' '.join(missing)} (or run with --install)")
    say(f"installing {' '.join(missing)}")
    run("apt-get install -y -qq " + " ".join(missing),
        env={"DEBIAN_FRONTEND": "noninteractive"})


def debian_versions(package):
    """Source versions apt knows for a package, newest first."""
    out = run(f"apt-cache showsrc {package}", check=False)
    versions = set(re.findall(r"^Version: (\S+)$", out, re.M))
    if not versions:
        raise BenchError(f"apt knows no source package {package}: add deb-src lines to apt's "
                         "sources (copy the `Types: deb` stanza of "
                         "/etc/apt/sources.list.d/debian.sources with `Types: deb-src`) "
                         "and run apt-get update")
    def newer_first(a, b):
        gt = subprocess.run(["dpkg", "--compare-versions", a, "gt", b]).returncode == 0
        return -1 if gt else 1

    return sorted(versions, key=functools.cmp_to_key(newer_first))


def fetch_debian(package, pkgdir):
    """The upstream tarball of a Debian source package, downloaded once into pkgdir."""
    pkgdir.mkdir(parents=True, exist_ok=True)

    def orig():
        found = [p for p in pkgdir.glob("*.orig.tar.*")
                 if not p.name.endswith(".asc")]
        return found[0] if found else None

    if orig():
        return orig()
    errors = []
    # The mirror drops superseded versions, and the index is sometimes ahead of it:
    # try every version apt knows, newest first.
    for version in debian_versions(package):
        say(f"fetching {package}={version} with apt-get source")
        r = subprocess.run(["apt-get", "source", "--download-only", f"{package}={version}"],
                           cwd=pkgdir, capture_output=True, text=True)
        if r.returncode == 0 and orig():
            return orig()
        errors.append(f"{version}: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
    raise BenchError(f"could not download source package {package}: {'; '.join(errors)}")


def unpack(tarball, dest):
    """Unpacks a tarball into dest, dropping its single top-level directory."""
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".unpack-"))
    try:
        run(f"tar --no-same-owner -xf '{tarball}' -C '{tmp}'")
        entries = list(tmp.iterdir())
        top = entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp
        shutil.move(str(top), str(dest))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def commit_tree(repo):
    # -f: the tarballs' own .gitignore files hide files their builds need.
    run("git init -q -b main . && git add -A -f . && git commit -q -m source", cwd=repo)


def prepare_source(wl, cache):
    """A local git repository of the project's source, made once and cached."""
    src = wl["source"]
    base = cache / "sources" / wl["name"]
    repo = base / "repo"
    identity = json.dumps(src, sort_keys=True)
    stamp = base / "prepared"
    if stamp.exists() and stamp.read_text() == identity and (repo / ".git").exists():
        return repo
    if "path" in src and (Path(src["path"]) / ".git").exists():
        return Path(src["path"])  # a local checkout: clone from it directly
    shutil.rmtree(base / "repo", ignore_errors=True)
    base.mkdir(parents=True, exist_ok=True)
    say(f"preparing the source of {wl['name']} in {repo}")
    if "git" in src:
        run(f"git clone -q '{src['git']}' '{repo}'")
    elif "debian" in src:
        unpack(fetch_debian(src["debian"], base / "pkg"), repo)
        commit_tree(repo)
    else:
        path = Path(src["path"])
        if path.is_dir():
            shutil.copytree(path, repo, symlinks=True)
        elif path.is_file():
            unpack(path, repo)
        else:
            raise BenchError(f"{wl['file']}: source path {path} does not exist")
        commit_tree(repo)
    stamp.write_text(identity)
    return repo


# ---------------------------------------------------------------------------------------
# Targets: a fresh file system (or directory) per run.

def is_mounted(path):
    want = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == want for line in f)


class Target:
    def __init__(self, kind, workdir, memfs, memfs_opts):
        self.kind, self.memfs, self.memfs_opts = kind, memfs, memfs_opts
        self.dir = Path(tempfile.mkdtemp(dir=workdir, prefix=f"{kind}-"))
        self.mnt = self.dir / "mnt"
        self.mnt.mkdir()
        self.proc = None
        self.mounted = False
        self.stats_out = self.dir / "stats.json"
        self.trace = self.dir / "trace.jsonl"
        self.log = self.dir / "memfs.log"

    def setup(self):
        if self.kind.startswith("memfs"):
            cmd = [self.memfs, "mount", str(self.mnt), "--stats-out", str(self.stats_out)]
            if self.kind == "memfs-trace":
                cmd += ["--trace", str(self.trace)]
            cmd += self.memfs_opts
            with open(self.log, "wb") as log:
                self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                             start_new_session=True)
            deadline = time.monotonic() + 20
            while not is_mounted(self.mnt):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise BenchError(f"memfs did not mount {self.mnt}: {tail_of(self.log)}")
                time.sleep(0.02)
            self.mounted = True
        elif self.kind == "tmpfs":
            run(f"mount -t tmpfs -o size=50% tmpfs '{self.mnt}'")
            self.mounted = True
        # disk: the directory itself, on whatever file system holds the cache

    def peak_rss(self):
        """The memfs process's peak resident memory so far (VmHWM), in bytes."""
        if not self.proc:
            return None
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
            return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024
        except (OSError, AttributeError):
            return None

    def memfs_stats(self):
        if not self.proc:
            return None
        try:
            return json.loads((self.mnt / ".memfs" / "stats.json").read_text())
        except (OSError, ValueError):
            return None

    def teardown(self):
        self.stop()
        self.remove()

    def stop(self):
        """Unmounts (lazily if busy) and waits for memfs to finish its trace and stats."""
        if self.mounted and is_mounted(self.mnt):
            if subprocess.run(["umount", str(self.mnt)], capture_output=True).returncode:
                subprocess.run(["umount", "-l", str(self.mnt)], capture_output=True)
        self.mounted = False
        if self.proc:
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


ACTIVE = []  # targets set up and not yet torn down, for cleanup on interrupt


def trace_summary(memfs, trace):
    if not trace.exists():
        return None
    out = subprocess.run([memfs, "trace", "summary", "--json", str(trace)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip()}
    s = json.loads(out.stdout)
    return {"records": s["records"], "errors": s["errors"], "file_bytes": trace.stat().st_size,
            "calls": {op: v["calls"] for op, v in s["ops"].items()},
            "time_ns": {op: v["total_ns"] for op, v in s["ops"].items()}}


def count_entries(root):
    """Files (everything not a directory or symlink), directories and symlinks below root."""
    n = {"files": 0, "dirs": 0, "symlinks": 0}
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for e in entries:
                if e.is_symlink():
                    n["symlinks"] += 1
                elif e.is_dir():
                    n["dirs"] += 1
                    stack.append(e.path)
                else:
                    n["files"] += 1
    return n


def one_run(wl, repo, kind, rnd, args, workdir, logdir):
    """Runs the four phases on a fresh target; returns the run's row."""
    row = {"project": wl["name"], "target": kind, "round": rnd, "ok": False, "phases": {}}
    log = logdir / f"{wl['name']}-{kind}-r{rnd}.log"
    target = Target(kind, workdir, args.memfs, args.memfs_opt)
    ACTIVE.append(target)
    label = f"{wl['name']} round {rnd}/{args.rounds} {kind}"
    try:
        run("sync")
        target.setup()
        src = target.mnt / "src"
        b = wl["build"]
        env = {"JOBS": str(args.jobs)}
        steps = {
            "clone": lambda: run(f"git clone -q --no-local '{repo}' '{src}'", log=log),
            "build": lambda: run(" && ".join(c for c in (b.get("configure"), b["build"]) if c),
                                 cwd=src, log=log, env=env),
            "walk": lambda: run(f"du -s -b --apparent-size '{src}'", cwd=target.mnt),
            "rm": lambda: run(f"rm -rf '{src}'"),
        }
        for phase in PHASES:
            say(f"{label}: {phase} ...")
            if phase == "rm":
                # What the tree holds, measured before it goes (untimed).
                row.update(count_entries(src))
                if b.get("check"):
                    r = subprocess.run(["bash", "-c", b["check"]], cwd=src,
                                       capture_output=True, text=True)
                    row["check"] = {"ok": r.returncode == 0,
                                    "output": (r.stdout + r.stderr).strip()[:500]}
                row["memfs_stats"] = pick_stats(target.memfs_stats())
            secs, out = timed(steps[phase])
            row["phases"][phase] = round(secs, 4)
            if phase == "walk":
                row["apparent_bytes"] = int(out.split()[0])
        stats_after = pick_stats(target.memfs_stats())
        if stats_after:
            row["memfs_stats_after_rm"] = stats_after
        row["peak_rss_bytes"] = target.peak_rss()  # VmHWM: the peak of the whole run
        row["ok"] = True
    except BenchError as e:
        row["error"] = str(e).splitlines()[0]
        say(f"{label}: FAILED: {e}")
    finally:
        stop_children()
        target.stop()
        if kind == "memfs-trace" and row["ok"]:
            row["trace"] = trace_summary(args.memfs, target.trace)
        target.remove()
        ACTIVE.remove(target)
    if row["ok"]:
        p = row["phases"]
        say(f"{label}: clone {p['clone']:.2f} s, build {p['build']:.1f} s, "
            f"walk {p['walk']:.3f} s, rm {p['rm']:.3f} s")
    return row


def pick_stats(s):
    if not s:
        return None
    keys = ["files", "dirs", "symlinks", "logical_bytes", "stored_bytes", "referenced_bytes",
            "dedup_ratio", "blobs", "versions", "version_bytes", "rss_bytes"]
    return {k: s[k] for k in keys if k in s}


# ---------------------------------------------------------------------------------------
# Aggregation, Markdown and SVG.

def summarize(rows, projects, targets):
    """Medians per project and target, and medians of the per-round ratios to tmpfs."""
    out = {}
    for proj in projects:
        out[proj] = {}
        by_round = {}
        for r in rows:
            if r["project"] == proj and r["ok"]:
                by_round.setdefault(r["round"], {})[r["target"]] = r
        for t in targets:
            runs = [rr[t] for rr in by_round.values() if t in rr]
            if not runs:
                continue
            s = {"runs": len(runs), "median_s": {}, "ratio_to_tmpfs": {}}
            for ph in PHASES + ["total"]:
                vals = [phase_time(r, ph) for r in runs]
                s["median_s"][ph] = round(statistics.median(vals), 4)
                ratios = [phase_time(rr[t], ph) / phase_time(rr["tmpfs"], ph)
                          for rr in by_round.values()
                          if t in rr and "tmpfs" in rr and phase_time(rr["tmpfs"], ph) > 0]
                if ratios:
                    s["ratio_to_tmpfs"][ph] = round(statistics.median(ratios), 3)
            for key in ["apparent_bytes", "peak_rss_bytes", "files", "dirs", "symlinks"]:
                vals = [r[key] for r in runs if r.get(key) is not None]
                if vals:
                    s[key] = int(statistics.median(vals))
            stats = [r["memfs_stats"] for r in runs if r.get("memfs_stats")]
            if stats:
                s["memfs_stats"] = {k: statistics.median(x[k] for x in stats)
                                    for k in stats[0]}
            traces = [r["trace"] for r in runs if r.get("trace") and "calls" in r["trace"]]
            if traces:
                ops = set().union(*(tr["calls"] for tr in traces))
                s["fuse_calls"] = {op: int(statistics.median(tr["calls"].get(op, 0)
                                                             for tr in traces))
                                   for op in sorted(ops)}
            out[proj][t] = s
    return out


def phase_time(row, phase):
    return sum(row["phases"].values()) if phase == "total" else row["phases"][phase]


def fmt_s(x):
    return f"{x:.3f} s" if x < 1 else f"{x:.2f} s" if x < 10 else f"{x:.1f} s"


def fmt_b(n):
    if n is None:
        return "–"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def markdown(result):
    m = result["machine"]
    lines = [f"Measured {result['date']} on {m['cpu']} ({m['cores']} cores, "
             f"{fmt_b(m['ram_bytes'])} RAM), Linux {m['kernel']}, memfs {result['memfs_rev']}; "
             f"{result['rounds']} round{'s' if result['rounds'] != 1 else ''} "
             f"({', '.join(result['targets'])}, order rotated each round), medians; "
             f"(×N) is the median of the per-round ratios to tmpfs.", ""]
    if result.get("note"):
        lines[0] += f" {result['note']}."
    for proj, per_target in result["summary"].items():
        if not per_target:
            lines += [f"**{proj}**: no successful run", ""]
            continue
        any_t = next(iter(per_target.values()))
        lines.append(f"**{proj}** — {any_t.get('files', '?')} files, "
                     f"{any_t.get('dirs', '?')} directories, "
                     f"{fmt_b(any_t.get('apparent_bytes'))} after the build")
        lines.append("")
        lines.append("| target | clone | build | walk | rm | total | memfs peak RSS | "
                     "stored (unique) | dedup |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for t, s in per_target.items():
            cells = []
            for ph in PHASES + ["total"]:
                cell = fmt_s(s["median_s"][ph])
                if ph in s["ratio_to_tmpfs"] and t != "tmpfs":
                    cell += f" (×{s['ratio_to_tmpfs'][ph]:.2f})"
                cells.append(cell)
            st = s.get("memfs_stats") or {}
            cells += [fmt_b(s.get("peak_rss_bytes")), fmt_b(st.get("stored_bytes")),
                      f"{st['dedup_ratio']:.2f}" if "dedup_ratio" in st else "–"]
            lines.append(f"| {t} | " + " | ".join(cells) + " |")
        lines.append("")
        calls = (per_target.get("memfs-trace") or {}).get("fuse_calls")
        if calls:
            top = sorted(calls.items(), key=lambda kv: -kv[1])[:12]
            lines.append("FUSE calls (memfs-trace, whole run): " +
                         ", ".join(f"{op} {n:,}" for op, n in top))
            lines.append("")
    failed = [r for r in result["runs"] if not r["ok"]]
    for r in failed:
        lines.append(f"- FAILED: {r['project']} {r['target']} round {r['round']}: "
                     f"{r.get('error', '?')}")
    return "\n".join(lines).rstrip() + "\n"


COLORS = {"memfs": "#1f77b4", "memfs-trace": "#9467bd", "tmpfs": "#2ca02c", "disk": "#8c564b"}


def figure_module():
    """matplotlib's Figure, or a one-line BenchError naming the package to install."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise BenchError("matplotlib is missing (it draws the plots): "
                         "apt-get install python3-matplotlib") from None
    return Figure


def svg_text(fig):
    buf = io.StringIO()
    # No date in the file, so a --report rerun on the same numbers writes the same plots.
    fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def svg_phases(proj, per_target):
    """One panel per phase, a bar per target with its own scale (build dwarfs walk)."""
    targets = list(per_target)
    fig = figure_module()(figsize=(10, 1.2 + 0.35 * len(targets)), layout="constrained")
    fig.suptitle(f"{proj}: median wall time per phase", fontweight="bold")
    axes = fig.subplots(1, len(PHASES), sharey=True)
    for ax, phase in zip(axes, PHASES):
        vals = [per_target[t]["median_s"][phase] for t in targets]
        bars = ax.barh(targets, vals, color=[COLORS.get(t, "#777") for t in targets])
        labels = []
        for t, v in zip(targets, vals):
            ratio = per_target[t]["ratio_to_tmpfs"].get(phase)
            labels.append(fmt_s(v) + (f" ×{ratio:.2f}" if ratio and t != "tmpfs" else ""))
        ax.bar_label(bars, labels=labels, padding=3, fontsize=8)
        ax.set_title(phase, loc="left", fontweight="bold", fontsize=10)
        # Room on the right for the labels; no ticks: the labels carry the numbers.
        ax.set_xlim(0, (max(vals) or 1) * 1.9)
        ax.set_xticks([])
        for side in ("top", "right", "bottom"):
            ax.spines[side].set_visible(False)
    axes[0].invert_yaxis()  # The first target on top; the axes share y, so all follow.
    return svg_text(fig)


def svg_memory(summary):
    """memfs's peak resident memory against the bytes the tree held, one point per project."""
    points = []
    for proj, per_target in summary.items():
        for t in ("memfs", "memfs-trace"):
            s = per_target.get(t)
            if s and s.get("peak_rss_bytes") and s.get("apparent_bytes"):
                points.append((proj, t, s["apparent_bytes"], s["peak_rss_bytes"]))
    mib = 1 << 20
    vmax = max([p[2] for p in points] + [p[3] for p in points] + [1]) * 1.1 / mib
    fig = figure_module()(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    ax.set_title("memfs peak RSS vs. bytes stored", fontweight="bold", loc="left")
    ax.plot([0, vmax], [0, vmax], linestyle="--", color="#bbb")
    ax.annotate("RSS = stored", (vmax * 0.78, vmax * 0.8), color="#888", fontsize=9)
    for t, name in (("memfs", "memfs"), ("memfs-trace", "memfs --trace")):
        mine = [p for p in points if p[1] == t]
        ax.scatter([p[2] / mib for p in mine], [p[3] / mib for p in mine], s=30,
                   color=COLORS[t], label=name, zorder=3)
        for proj, _, stored, rss in mine:
            ax.annotate(f"{proj} ({t})", (stored / mib, rss / mib), xytext=(7, 6),
                        textcoords="offset points", fontsize=8)
    ax.set_xlim(0, vmax)
    ax.set_ylim(0, vmax)
    ax.set_xlabel("stored (MiB)")
    ax.set_ylabel("peak RSS (MiB)")
    ax.legend(loc="upper left", frameon=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return svg_text(fig)


def write_reports(result, out):
    (out / "results.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "results.md").write_text(markdown(result))
    for proj, per_target in result["summary"].items():
        if per_target:
            (out / f"time-{proj}.svg").write_text(svg_phases(proj, per_target))
    (out / "memory.svg").write_text(svg_memory(result["summary"]))


def machine():
    cpu = "?"
    try:
        cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text()).group(1)
    except (OSError, AttributeError):
        pass
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"cpu": cpu.strip(), "cores": os.cpu_count(), "ram_bytes": ram,
            "kernel": platform.release(), "disk_fs": None}


def memfs_rev():
    r = subprocess.run(["git", "-C", str(HERE), "describe", "--always", "--dirty"],
                       capture_output=True, text=True)
    return r.stdout.strip() or "?"


# ---------------------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(prog="bench.sh", description=__doc__.split("\n\n")[0])
    p.add_argument("projects", nargs="*",
                   help="workload names (workloads/NAME.toml) or .toml paths; default: all")
    p.add_argument("--targets", default=",".join(TARGETS),
                   help=f"comma-separated, of {', '.join(TARGETS)} (default: all)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--jobs", type=int, default=os.cpu_count(), help="$JOBS for make -j")
    p.add_argument("--cache", type=Path, default=Path("/var/tmp/memfs-bench"),
                   help="prepared sources, and the disk target's runs (default: %(default)s)")
    p.add_argument("--out", type=Path, help="results directory (default: bench-results/DATE)")
    p.add_argument("--memfs", default=str(HERE / "target" / "release" / "memfs"))
    p.add_argument("--memfs-opt", action="append", default=[], metavar="OPT",
                   help="an extra `memfs mount` option (repeatable), e.g. --memfs-opt=--ttl=1")
    p.add_argument("--install", action="store_true",
                   help="apt-get install the build packages that are missing")
    p.add_argument("--prepare-only", action="store_true",
                   help="fetch and prepare the sources, then stop")
    p.add_argument("--report", type=Path, metavar="RESULTS_JSON",
                   help="only redraw the table and plots of an earlier results.json")
    a = p.parse_args(argv)
    a.targets = [t.strip() for t in a.targets.split(",") if t.strip()]
    for t in a.targets:
        if t not in TARGETS:
            p.error(f"unknown target {t} (known: {', '.join(TARGETS)})")
    if a.rounds < 1:
        p.error("--rounds must be at least 1")
    return a


def main(argv):
    args = parse_args(argv)
    figure_module()  # Fail now, not after an hour of builds, if the plots cannot be drawn.
    if args.report:
        result = json.loads(args.report.read_text())
        projects = list(dict.fromkeys(r["project"] for r in result["runs"]))
        targets = list(dict.fromkeys(r["target"] for r in result["runs"]))
        result["summary"] = summarize(result["runs"], projects, targets)
        write_reports(result, args.report.parent)
        print(args.report.parent / "results.md")
        return 0
    names = args.projects or sorted(p.stem for p in (HERE / "workloads").glob("*.toml"))
    workloads = [load_workload(n) for n in names]
    if any(t.startswith("memfs") for t in args.targets) and not os.access(args.memfs, os.X_OK):
        raise BenchError(f"{args.memfs}: no memfs binary (cargo build --release)")
    if "tmpfs" in args.targets and os.geteuid() != 0:
        raise BenchError("mounting tmpfs needs root; leave it out with --targets")
    ensure_packages(workloads, args.install)
    args.cache.mkdir(parents=True, exist_ok=True)
    repos = {wl["name"]: prepare_source(wl, args.cache) for wl in workloads}
    if args.prepare_only:
        return 0
    date = time.strftime("%Y-%m-%d %H:%M")
    out = args.out or HERE / "bench-results" / time.strftime("%Y%m%d-%H%M%S")
    logdir = out / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(dir=args.cache, prefix="runs-"))
    result = {"date": date, "machine": machine(), "memfs_rev": memfs_rev(),
              "rounds": args.rounds, "targets": args.targets, "jobs": args.jobs,
              "memfs_options": args.memfs_opt,
              "workloads": {wl["name"]: {k: wl[k] for k in ("file", "source", "build")}
                            for wl in workloads},
              "runs": []}
    df = run(f"stat -f -c %T '{workdir}'", check=False).strip()
    result["machine"]["disk_fs"] = df
    try:
        for wl in workloads:
            for rnd in range(1, args.rounds + 1):
                # Rotate the order each round, so no target always runs first or last.
                order = args.targets[rnd - 1:] + args.targets[:rnd - 1]
                for kind in order:
                    result["runs"].append(one_run(wl, repos[wl["name"]], kind, rnd, args,
                                                  workdir, logdir))
                    # Results so far survive an interrupt.
                    result["summary"] = summarize(result["runs"], [w["name"] for w in workloads],
                                                  args.targets)
                    write_reports(result, out)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    say(f"results in {out}/results.md, results.json and *.svg")
    print((out / "results.md").read_text(), end="")
    return 0 if all(r["ok"] for r in result["runs"]) else 1


def on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    code = 130
    try:
        code = main(sys.argv[1:])
    except BenchError as e:
        say(str(e))
        code = 2
    except KeyboardInterrupt:
        say("interrupted: cleaning up")
    finally:
        stop_children()
        for t in list(ACTIVE):
            t.teardown()
    sys.exit(code)
