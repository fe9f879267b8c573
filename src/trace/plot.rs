//! `memfs trace plot FILE --svg OUT`: what happened, as a picture. The top is a timeline with
//! one lane per file (or per process): each open→release session is a bar, amber if it
//! wrote, with its writes, flushes and fsyncs as ticks and each committed version as a dot;
//! a close-to-open window (the file opened while another handle held written, uncommitted
//! data) is shaded red until the data was committed. Below, a log2 latency histogram for
//! each of the ops memfs spent most time in.
//!
//! The trace is read twice as a stream: first to pick the lanes (the `MAX_LANES` with the
//! most sessions) and the time span, then to collect only their sessions. Ticks are merged
//! per pixel, so the picture stays small whatever the trace's length.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::analyze::{fmt_ns, Histogram, Paths};
use super::by_process::{NamedRequests, ProgramNames};
use super::{Op, Record};

/// Lanes drawn at most; the rest are counted in the caption.
const MAX_LANES: usize = 40;
/// Latency histograms drawn: the ops with the most total time.
const MAX_HISTOGRAMS: usize = 8;
const WIDTH: u32 = 1200;
const MARGIN: i32 = 20;
const LABEL_PX: i32 = 300;
const PLOT_PX: i32 = WIDTH as i32 - LABEL_PX - 2 * MARGIN;
const LANE_H: i32 = 18;
const BAR_H: i32 = 10;
const HIST_COLS: i32 = 4;
const HIST_W: i32 = (WIDTH as i32 - 2 * MARGIN) / HIST_COLS;
const HIST_H: i32 = 150;
const FONT: &str = "DejaVu Sans, Helvetica, Arial, sans-serif";

const READ_BAR: RGBColor = RGBColor(0xa6, 0xc8, 0xe8);
const WRITE_BAR: RGBColor = RGBColor(0xf3, 0xc6, 0x6b);
const WRITE_TICK: RGBColor = RGBColor(0x1f, 0x4e, 0x96);
const FLUSH_TICK: RGBColor = RGBColor(0x2a, 0x9d, 0x3f);
const FSYNC_TICK: RGBColor = RGBColor(0xb0, 0x2a, 0xc0);
/// Pale red: drawn under the sessions, so they show through.
const WINDOW: RGBColor = RGBColor(0xf6, 0xc4, 0xc4);
const HIST_BAR: RGBColor = RGBColor(0x4a, 0x7f, 0xc1);

/// What a lane is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LaneBy {
    File,
    Process,
}

/// One open→release session on a lane, as pixel columns.
struct Bar {
    lane: usize,
    start: u64,
    end: Option<u64>,
    wrote: bool,
    /// Pixel columns (from the plot's left edge) with a write, a flush, an fsync, a commit.
    writes: BTreeSet<i32>,
    flushes: BTreeSet<i32>,
    fsyncs: BTreeSet<i32>,
    commits: BTreeSet<i32>,
}

/// A close-to-open window on a lane: from the open to the commit (or the release) that
/// ended it.
struct Window {
    lane: usize,
    start: u64,
    end: Option<u64>,
    ino: u64,
}

/// Sessions as the trace's records open and close them, with each file's uncommitted
/// writers; shared by both passes.
#[derive(Default)]
struct Follower {
    paths: Paths,
    /// Open handle → (inode, lane key).
    open: HashMap<u64, (u64, String)>,
    /// Per inode: handles with data written since the last commit.
    dirty: HashMap<u64, HashSet<u64>>,
}

/// What a record did to the sessions.
enum Event {
    Opened {
        fh: u64,
        key: String,
        /// Another handle held uncommitted data of the file.
        window: bool,
    },
    Write(u64),
    Flush(u64),
    Fsync(u64),
    /// A commit of the file's data by this handle (a flush, fsync or release that made a
    /// version).
    Committed(u64),
    Released(u64),
    /// No writer holds uncommitted data of the inode any more.
    Clean(u64),
}

impl Follower {
    fn lane_key(&self, by: LaneBy, names: &ProgramNames, ino: u64, pid: Option<u32>) -> String {
        match by {
            // A lane per path, as opened: git's `config.lock` written and renamed over
            // `config` is two lanes, not one per inode that ever held the name.
            LaneBy::File => self.paths.path(ino),
            LaneBy::Process => format!(
                "{} [{}]",
                names.name(pid),
                pid.map_or("?".into(), |p| p.to_string())
            ),
        }
    }

    /// What `r` did to the sessions, into `events`; `names` names the programs for lanes
    /// per process.
    fn follow(&mut self, r: &Record, by: LaneBy, names: &ProgramNames, events: &mut Vec<Event>) {
        self.paths.learn(r);
        if !r.result.is_ok() {
            return;
        }
        match r.op {
            Op::Open | Op::Create | Op::Tmpfile => {
                if let (Some(ino), Some(fh)) = (r.ino, r.fh) {
                    let key = self.lane_key(by, names, ino, r.pid);
                    let window = self.dirty.get(&ino).is_some_and(|h| !h.is_empty());
                    self.open.insert(fh, (ino, key.clone()));
                    events.push(Event::Opened { fh, key, window });
                }
                return;
            }
            Op::Write | Op::Flush | Op::Fsync | Op::Release => {}
            _ => return,
        }
        let Some(fh) = r.fh else { return };
        let Some(&(ino, _)) = self.open.get(&fh) else {
            return;
        };
        let was_dirty = self.dirty.get(&ino).is_some_and(|h| !h.is_empty());
        match r.op {
            Op::Write => {
                events.push(Event::Write(fh));
                self.dirty.entry(ino).or_default().insert(fh);
            }
            Op::Flush => events.push(Event::Flush(fh)),
            Op::Fsync => events.push(Event::Fsync(fh)),
            _ => {}
        }
        if r.version.is_some() {
            events.push(Event::Committed(fh));
            self.dirty.remove(&ino);
        } else if r.op == Op::Flush || r.op == Op::Fsync {
            if let Some(h) = self.dirty.get_mut(&ino) {
                h.remove(&fh);
            }
        }
        if r.op == Op::Release {
            self.open.remove(&fh);
            if let Some(h) = self.dirty.get_mut(&ino) {
                h.remove(&fh);
            }
            events.push(Event::Released(fh));
        }
        let is_dirty = self.dirty.get(&ino).is_some_and(|h| !h.is_empty());
        if was_dirty && !is_dirty {
            events.push(Event::Clean(ino));
        }
    }
}

/// Per lane key: its sessions, and the span they cover.
struct LaneCount {
    sessions: u64,
    first: u64,
    last: u64,
}

/// Per op: calls, total time and latencies.
#[derive(Default)]
struct OpLatency {
    total_ns: u64,
    latency: Histogram,
}

/// The first pass: every lane key's sessions and the latency of every op.
fn survey(
    path: &Path,
    by: LaneBy,
    filter: Option<&str>,
) -> Result<(HashMap<String, LaneCount>, HashMap<Op, OpLatency>)> {
    let mut f = Follower::default();
    let mut lanes: HashMap<String, LaneCount> = HashMap::new();
    let mut ops: HashMap<Op, OpLatency> = HashMap::new();
    let mut keys: HashMap<u64, String> = HashMap::new();
    let mut events = Vec::new();
    let mut requests = NamedRequests::open(path)?;
    while let Some(r) = requests.next_request() {
        let r = r?;
        let o = ops.entry(r.op.clone()).or_default();
        o.total_ns += r.dur_ns;
        o.latency.add(r.dur_ns);
        events.clear();
        f.follow(&r, by, &requests.names, &mut events);
        let end = r.t_ns + r.dur_ns;
        for e in &events {
            match e {
                Event::Opened { fh, key, .. } => {
                    let file = f.open.get(fh).map(|o| f.paths.path(o.0));
                    if filter.is_some_and(|want| !file.is_some_and(|p| path_matches(&p, want))) {
                        continue;
                    }
                    keys.insert(*fh, key.clone());
                    let lane = lanes.entry(key.clone()).or_insert(LaneCount {
                        sessions: 0,
                        first: r.t_ns,
                        last: end,
                    });
                    lane.sessions += 1;
                }
                Event::Released(fh) => {
                    if let Some(lane) = keys.remove(fh).and_then(|k| lanes.get_mut(&k)) {
                        lane.last = lane.last.max(end);
                    }
                }
                _ => {}
            }
        }
    }
    Ok((lanes, ops))
}

/// Whether `path` is `filter` or lies below it.
fn path_matches(path: &str, filter: &str) -> bool {
    let filter = format!("/{}", filter.trim_matches('/'));
    filter == "/" || path == filter || path.starts_with(&format!("{filter}/"))
}

/// The chosen lanes, the time span and what the second pass collected.
struct Timeline {
    labels: Vec<String>,
    /// Lanes with sessions that were not drawn.
    left_out: usize,
    t0: u64,
    t1: u64,
    bars: Vec<Bar>,
    windows: Vec<Window>,
}

impl Timeline {
    fn px(&self, t: u64) -> i32 {
        let span = (self.t1 - self.t0).max(1) as f64;
        ((t.saturating_sub(self.t0)) as f64 / span * PLOT_PX as f64)
            .round()
            .clamp(0.0, PLOT_PX as f64) as i32
    }
}

/// The second pass: the sessions and windows of the chosen lanes.
fn collect(path: &Path, by: LaneBy, lanes: &HashMap<String, LaneCount>) -> Result<Timeline> {
    let mut chosen: Vec<(&String, &LaneCount)> = lanes.iter().collect();
    chosen.sort_by(|a, b| b.1.sessions.cmp(&a.1.sessions).then_with(|| a.0.cmp(b.0)));
    let left_out = chosen.len().saturating_sub(MAX_LANES);
    chosen.truncate(MAX_LANES);
    // Lanes in order of their first session.
    chosen.sort_by(|a, b| a.1.first.cmp(&b.1.first).then_with(|| a.0.cmp(b.0)));
    let index: HashMap<&str, usize> = chosen
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (k.as_str(), i))
        .collect();
    let mut tl = Timeline {
        labels: chosen.iter().map(|(k, _)| (*k).clone()).collect(),
        left_out,
        t0: chosen.iter().map(|c| c.1.first).min().unwrap_or(0),
        t1: chosen.iter().map(|c| c.1.last).max().unwrap_or(1),
        bars: Vec::new(),
        windows: Vec::new(),
    };
    let mut f = Follower::default();
    let mut bar_of: HashMap<u64, usize> = HashMap::new();
    let mut events = Vec::new();
    let mut requests = NamedRequests::open(path)?;
    while let Some(r) = requests.next_request() {
        let r = r?;
        events.clear();
        f.follow(&r, by, &requests.names, &mut events);
        let x = tl.px(r.t_ns);
        let end = r.t_ns + r.dur_ns;
        for e in events.drain(..) {
            match e {
                Event::Opened { fh, key, window } => {
                    let Some(&lane) = index.get(key.as_str()) else {
                        continue;
                    };
                    bar_of.insert(fh, tl.bars.len());
                    tl.bars.push(Bar {
                        lane,
                        start: r.t_ns,
                        end: None,
                        wrote: false,
                        writes: BTreeSet::new(),
                        flushes: BTreeSet::new(),
                        fsyncs: BTreeSet::new(),
                        commits: BTreeSet::new(),
                    });
                    if window {
                        if let Some(&(ino, _)) = f.open.get(&fh) {
                            tl.windows.push(Window {
                                lane,
                                start: r.t_ns,
                                end: None,
                                ino,
                            });
                        }
                    }
                }
                Event::Write(fh) => {
                    if let Some(b) = bar_of.get(&fh).map(|&i| &mut tl.bars[i]) {
                        b.wrote = true;
                        b.writes.insert(x);
                    }
                }
                Event::Flush(fh) => {
                    if let Some(b) = bar_of.get(&fh).map(|&i| &mut tl.bars[i]) {
                        b.flushes.insert(x);
                    }
                }
                Event::Fsync(fh) => {
                    if let Some(b) = bar_of.get(&fh).map(|&i| &mut tl.bars[i]) {
                        b.fsyncs.insert(x);
                    }
                }
                Event::Committed(fh) => {
                    let at = tl.px(end);
                    if let Some(b) = bar_of.get(&fh).map(|&i| &mut tl.bars[i]) {
                        b.commits.insert(at);
                    }
                }
                Event::Released(fh) => {
                    if let Some(i) = bar_of.remove(&fh) {
                        tl.bars[i].end = Some(end);
                    }
                }
                Event::Clean(ino) => {
                    for w in tl.windows.iter_mut().filter(|w| w.ino == ino) {
                        w.end.get_or_insert(end);
                    }
                }
            }
        }
    }
    Ok(tl)
}

/// What a lane shows, in pixel columns: the spans its sessions cover (overlapping sessions
/// merged, so a lane of a thousand opens of one header draws as a few bars), and the ticks.
#[derive(Default)]
struct LaneMarks {
    read: Vec<(i32, i32)>,
    wrote: Vec<(i32, i32)>,
    writes: BTreeSet<i32>,
    flushes: BTreeSet<i32>,
    fsyncs: BTreeSet<i32>,
    commits: BTreeSet<i32>,
}

fn lane_marks(tl: &Timeline) -> Vec<LaneMarks> {
    let mut spans: Vec<[Vec<(i32, i32)>; 2]> =
        (0..tl.labels.len()).map(|_| Default::default()).collect();
    let mut marks: Vec<LaneMarks> = (0..tl.labels.len()).map(|_| LaneMarks::default()).collect();
    for b in &tl.bars {
        let x0 = tl.px(b.start);
        // Two pixels at least, so a session of microseconds still shows.
        let x1 = tl.px(b.end.unwrap_or(tl.t1)).max(x0 + 2);
        spans[b.lane][b.wrote as usize].push((x0, x1));
        let m = &mut marks[b.lane];
        m.writes.extend(&b.writes);
        m.flushes.extend(&b.flushes);
        m.fsyncs.extend(&b.fsyncs);
        m.commits.extend(&b.commits);
    }
    for (m, [read, wrote]) in marks.iter_mut().zip(spans) {
        m.read = merged(read);
        m.wrote = merged(wrote);
    }
    marks
}

/// The union of pixel spans, as disjoint spans in order.
fn merged(mut spans: Vec<(i32, i32)>) -> Vec<(i32, i32)> {
    spans.sort_unstable();
    let mut out: Vec<(i32, i32)> = Vec::new();
    for (x0, x1) in spans {
        match out.last_mut() {
            Some(last) if x0 <= last.1 => last.1 = last.1.max(x1),
            _ => out.push((x0, x1)),
        }
    }
    out
}

/// How a line of text looks.
fn ink(px: f64, bold: bool, grey: u8) -> TextStyle<'static> {
    // plotters writes font-size as size / 1.24, so sizes are given in its units.
    let font = (FONT, px * 1.24).into_font();
    let font = if bold {
        font.style(FontStyle::Bold)
    } else {
        font
    };
    font.color(&RGBColor(grey, grey, grey))
        .pos(Pos::new(HPos::Left, VPos::Bottom))
}

/// "1 call", "2 calls".
fn counted(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Shortens a label from the left to about `max` characters ("…/deep/path/file.c").
fn shorten(label: &str, max: usize) -> String {
    let n = label.chars().count();
    if n <= max {
        return label.to_string();
    }
    let tail: String = label.chars().skip(n - (max - 1)).collect();
    format!("…{tail}")
}

/// Draws the plot of the trace at `trace` into `out`: lanes per file, or per process with
/// `per_process`; only files at or below `filter` if given.
pub fn svg(trace: &Path, out: &Path, filter: Option<&str>, per_process: bool) -> Result<()> {
    let by = if per_process {
        LaneBy::Process
    } else {
        LaneBy::File
    };
    let (lanes, ops) = survey(trace, by, filter)?;
    let tl = collect(trace, by, &lanes)?;
    let mut hists: Vec<(&Op, &OpLatency)> = ops.iter().collect();
    hists.sort_by_key(|h| std::cmp::Reverse(h.1.total_ns));
    hists.truncate(MAX_HISTOGRAMS);
    let text = draw(trace, &tl, &hists, by, filter)?;
    std::fs::write(out, text).with_context(|| format!("{}", out.display()))
}

fn draw(
    trace: &Path,
    tl: &Timeline,
    hists: &[(&Op, &OpLatency)],
    by: LaneBy,
    filter: Option<&str>,
) -> Result<String> {
    let lanes_top = MARGIN + 78;
    let lanes_bottom = lanes_top + LANE_H * tl.labels.len().max(1) as i32;
    let hist_top = lanes_bottom + 70;
    let hist_rows = (hists.len() as i32 + HIST_COLS - 1) / HIST_COLS;
    let height = (hist_top + hist_rows * (HIST_H + 20) + MARGIN) as u32;
    let failed = |e: DrawingAreaErrorKind<_>| anyhow!("drawing the SVG: {e}");
    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        area.fill(&WHITE).map_err(failed)?;
        let text = |s: String, x: i32, y: i32, style: TextStyle<'static>| {
            area.draw(&Text::new(s, (x, y), style))
        };
        let name = trace
            .file_name()
            .map_or("trace".into(), |n| n.to_string_lossy().into_owned());
        let what = match by {
            LaneBy::File => "file",
            LaneBy::Process => "process",
        };
        text(
            format!("{name}: open→release sessions, one lane per {what}"),
            MARGIN,
            MARGIN + 18,
            ink(17.0, true, 0),
        )
        .map_err(failed)?;
        let mut caption = format!(
            "{} to {} after the mount; {}",
            fmt_ns(tl.t0),
            fmt_ns(tl.t1),
            counted(tl.labels.len() as u64, "lane")
        );
        if tl.left_out > 0 {
            caption += &format!(
                " (the {MAX_LANES} with most sessions; {} more not shown)",
                tl.left_out
            );
        }
        if let Some(f) = filter {
            caption += &format!("; files under {f}");
        }
        text(caption, MARGIN, MARGIN + 38, ink(13.0, false, 0x55)).map_err(failed)?;
        // The legend.
        let mut x = MARGIN;
        let y = MARGIN + 60;
        for (label, colour, tall) in [
            ("session (read)", READ_BAR, false),
            ("session that wrote", WRITE_BAR, false),
            ("write", WRITE_TICK, true),
            ("flush", FLUSH_TICK, true),
            ("fsync", FSYNC_TICK, true),
            ("close-to-open window", WINDOW, false),
        ] {
            if tall {
                area.draw(&Rectangle::new(
                    [(x + 4, y - 12), (x + 6, y)],
                    colour.filled(),
                ))
                .map_err(failed)?;
            } else {
                area.draw(&Rectangle::new([(x, y - 10), (x + 12, y)], colour.filled()))
                    .map_err(failed)?;
            }
            text(label.to_string(), x + 16, y + 1, ink(12.0, false, 0x33)).map_err(failed)?;
            x += 40 + 7 * label.len() as i32;
        }
        area.draw(&Circle::new((x + 5, y - 5), 3, BLACK.filled()))
            .map_err(failed)?;
        text(
            "version committed".to_string(),
            x + 14,
            y + 1,
            ink(12.0, false, 0x33),
        )
        .map_err(failed)?;

        let left = MARGIN + LABEL_PX;
        let lane_y = |lane: usize| lanes_top + LANE_H * lane as i32;
        for (i, label) in tl.labels.iter().enumerate() {
            let y = lane_y(i);
            if i % 2 == 1 {
                area.draw(&Rectangle::new(
                    [(MARGIN, y), (left + PLOT_PX, y + LANE_H)],
                    RGBColor(0xf4, 0xf4, 0xf4).filled(),
                ))
                .map_err(failed)?;
            }
            text(
                shorten(label, 44),
                MARGIN,
                y + LANE_H - 4,
                ink(11.5, false, 0x22),
            )
            .map_err(failed)?;
        }
        for w in &tl.windows {
            let y = lane_y(w.lane);
            let x0 = left + tl.px(w.start);
            let x1 = left + tl.px(w.end.unwrap_or(tl.t1)).max(tl.px(w.start) + 3);
            area.draw(&Rectangle::new(
                [(x0, y), (x1, y + LANE_H)],
                WINDOW.filled(),
            ))
            .map_err(failed)?;
        }
        for (lane, marks) in lane_marks(tl).iter().enumerate() {
            let y = lane_y(lane) + (LANE_H - BAR_H) / 2;
            for (cover, fill) in [(&marks.read, READ_BAR), (&marks.wrote, WRITE_BAR)] {
                for &(x0, x1) in cover {
                    area.draw(&Rectangle::new(
                        [(left + x0, y), (left + x1, y + BAR_H)],
                        fill.filled(),
                    ))
                    .map_err(failed)?;
                }
            }
            for (ticks, colour, reach) in [
                (&marks.writes, WRITE_TICK, 0),
                (&marks.flushes, FLUSH_TICK, 3),
                (&marks.fsyncs, FSYNC_TICK, 3),
            ] {
                for &px in ticks {
                    area.draw(&Rectangle::new(
                        [(left + px, y - reach), (left + px + 1, y + BAR_H + reach)],
                        colour.filled(),
                    ))
                    .map_err(failed)?;
                }
            }
            for &px in &marks.commits {
                area.draw(&Circle::new((left + px, y + BAR_H / 2), 3, BLACK.filled()))
                    .map_err(failed)?;
            }
        }
        // The time axis: five ticks.
        for i in 0..=4 {
            let t = tl.t0 + (tl.t1 - tl.t0) * i / 4;
            let x = left + tl.px(t);
            area.draw(&Rectangle::new(
                [(x, lanes_bottom), (x + 1, lanes_bottom + 5)],
                RGBColor(0x77, 0x77, 0x77).filled(),
            ))
            .map_err(failed)?;
            // Labels centred on their tick, the last one ending there.
            let shift = if i == 4 { 48 } else { 20 };
            text(
                fmt_ns(t),
                x - shift,
                lanes_bottom + 19,
                ink(11.0, false, 0x77),
            )
            .map_err(failed)?;
        }

        text(
            "latency per op (log2 buckets; the ops memfs spent most time in)".to_string(),
            MARGIN,
            hist_top - 18,
            ink(15.0, true, 0),
        )
        .map_err(failed)?;
        for (i, (op, o)) in hists.iter().enumerate() {
            let x = MARGIN + HIST_W * (i as i32 % HIST_COLS);
            let y = hist_top + (HIST_H + 20) * (i as i32 / HIST_COLS);
            let h = &o.latency;
            text(
                format!("{op}: {}", counted(h.count(), "call")),
                x,
                y + 14,
                ink(12.5, true, 0),
            )
            .map_err(failed)?;
            text(
                format!(
                    "p50 {}  p99 {}  total {}",
                    fmt_ns(h.quantile(0.5)),
                    fmt_ns(h.quantile(0.99)),
                    fmt_ns(o.total_ns)
                ),
                x,
                y + 29,
                ink(11.0, false, 0x55),
            )
            .map_err(failed)?;
            let buckets = h.log2_buckets();
            let most = buckets.iter().map(|b| b.1).max().unwrap_or(1).max(1);
            let n = buckets.len().max(1) as i32;
            let plot_w = HIST_W - 24;
            let bar_w = (plot_w / n).clamp(2, 24);
            let base = y + HIST_H - 18;
            let top = y + 38;
            for (j, (low, count)) in buckets.iter().enumerate() {
                let bx = x + bar_w * j as i32;
                let bh = ((base - top) as f64 * *count as f64 / most as f64).round() as i32;
                area.draw(&Rectangle::new(
                    [(bx, base - bh.max(1)), (bx + bar_w - 1, base)],
                    HIST_BAR.filled(),
                ))
                .map_err(failed)?;
                // Label every fourth bucket (each is ×16 the last label).
                if j % 4 == 0 {
                    text(fmt_ns(*low), bx, base + 13, ink(10.0, false, 0x77)).map_err(failed)?;
                }
            }
        }
        area.present().map_err(failed)?;
    }
    Ok(svg)
}
