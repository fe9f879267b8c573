//! `memfs chunks --svg`: the chunks of both files as coloured bars, one pair of bars per
//! chunker, drawn with plotters' SVG backend.
//!
//! The picture is laid out first (a list of shapes at pixel positions, which also gives its
//! height), then drawn.

use std::collections::HashSet;

use anyhow::{anyhow, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use memfs::store::ChunkId;

use super::{describe, percent, Chunk, Comparison};
use memfs::units;

/// Most cells the whole picture may hold (a rectangle each, two for a chunk in one file
/// only); bars with more chunks merge neighbours.
const MAX_CELLS: usize = 20_000;
const BAR_PX: u32 = 1000;
const MARGIN: i32 = 20;
const BAR_H: i32 = 26;
const WIDTH: u32 = BAR_PX + 2 * MARGIN as u32;
const FONT: &str = "DejaVu Sans, Helvetica, Arial, sans-serif";
/// Chunks only in one file: grey, hatched pink, outlined red.
const ALONE_FILL: RGBColor = RGBColor(0xd4, 0xd4, 0xd4);
const ALONE_HATCH: RGBColor = RGBColor(0xe8, 0xa0, 0x9a);
const ALONE_OUTLINE: RGBColor = RGBColor(0xd0, 0x3c, 0x32);
/// Horizontal distance between two hatch lines.
const HATCH_PX: i32 = 7;

/// A pleasant colour for a chunk: hue from the hash, saturation 60 %, lightness 65 %.
fn colour(hash: &ChunkId) -> HSLColor {
    let [lo, hi, ..] = *hash.as_bytes();
    let hue = f64::from(u16::from_le_bytes([lo, hi])) / 65536.0;
    HSLColor(hue, 0.60, 0.65)
}

/// How a line of text looks.
#[derive(Clone, Copy)]
enum Ink {
    Title,
    Label,
    Detail,
    Caption,
    Body,
    Scale,
}

impl Ink {
    fn style(self) -> TextStyle<'static> {
        // plotters writes font-size as size / 1.24, so sizes are given in its units.
        let font = |px: f64| (FONT, px * 1.24).into_font();
        let grey = |v: u8| RGBColor(v, v, v);
        let (font, colour) = match self {
            Ink::Title => (font(17.0).style(FontStyle::Bold), BLACK),
            Ink::Label => (font(13.0).style(FontStyle::Bold), BLACK),
            Ink::Detail => (font(13.0), grey(0x55)),
            Ink::Caption => (font(13.0).style(FontStyle::Italic), grey(0x33)),
            Ink::Body => (font(13.0), BLACK),
            Ink::Scale => (font(11.0), grey(0x77)),
        };
        font.color(&colour).pos(Pos::new(HPos::Left, VPos::Bottom))
    }
}

/// What a rectangle is filled with.
#[derive(Clone, Copy)]
enum Fill {
    Chunk(HSLColor),
    Alone,
}

enum Shape {
    /// Text whose bottom left is at (x, y).
    Text {
        x: i32,
        y: i32,
        text: String,
        ink: Ink,
    },
    /// A rectangle from its top left to its bottom right corner.
    Rect {
        corners: [(i32, i32); 2],
        fill: Fill,
    },
}

impl Shape {
    fn text(x: i32, y: i32, text: impl Into<String>, ink: Ink) -> Shape {
        let text = text.into();
        Shape::Text { x, y, text, ink }
    }
}

/// Rough width of `text` in bold 13 px DejaVu Sans (plotters cannot measure text for SVG),
/// to set two styles of text side by side.
fn text_px(text: &str) -> i32 {
    let em: f64 = text
        .chars()
        .map(|c| match c {
            'f' | 'i' | 'j' | 'l' | 'r' | 't' => 0.45,
            ' ' | ':' | '/' | '.' | ',' | '-' | '(' | ')' => 0.38,
            '0'..='9' => 0.70,
            c if c.is_uppercase() => 0.76,
            _ => 0.66,
        })
        .sum();
    (em * 13.0).round() as i32
}

/// The 45° hatch lines inside a rectangle, each cut to its left and right sides.
fn hatch([(x0, y0), (x1, y1)]: [(i32, i32); 2]) -> Vec<[(i32, i32); 2]> {
    let h = y1 - y0;
    (x0 - h..x1)
        .step_by(HATCH_PX as usize)
        .filter_map(|k| {
            // The line from (k, y1) up to (k + h, y0), as t goes from 0 to h.
            let (t0, t1) = ((x0 - k).max(0), (x1 - k).min(h));
            (t0 < t1).then_some([(k + t0, y1 - t0), (k + t1, y1 - t1)])
        })
        .collect()
}

/// A rectangle to draw: a chunk, or a run of merged neighbours.
struct Cell {
    offset: usize,
    len: usize,
    /// The first chunk's hash (gives the colour).
    hash: ChunkId,
    /// In one file only (drawn grey, outlined red).
    alone: bool,
}

/// The cells of one bar: every chunk, or, over `budget`, runs merged to a minimum width.
fn cells(
    chunks: &[Chunk],
    other: Option<&HashSet<ChunkId>>,
    px_per_byte: f64,
    budget: usize,
) -> Vec<Cell> {
    let alone = |c: &Chunk| other.is_some_and(|set| !set.contains(&c.hash));
    let one = |c: &Chunk| Cell {
        offset: c.offset,
        len: c.len,
        hash: c.hash,
        alone: alone(c),
    };
    let narrow = |len: usize| (len as f64) * px_per_byte < 3.0;
    // New chunks are all drawn alike, so a run of ones too narrow to be told apart anyway
    // is one rectangle (else their red outlines pile up into a solid block).
    let mut cells: Vec<Cell> = Vec::with_capacity(chunks.len());
    let mut tail_narrow_alone = false;
    for c in chunks {
        let cell = one(c);
        let narrow_alone = cell.alone && narrow(cell.len);
        match cells.last_mut() {
            Some(last) if narrow_alone && tail_narrow_alone => {
                last.len += cell.len;
            }
            _ => cells.push(cell),
        }
        tail_narrow_alone = narrow_alone;
    }
    if cells.len() <= budget {
        return cells;
    }
    let min_px = f64::from(BAR_PX) / budget as f64;
    // First merge only neighbours of the same kind; if that still leaves too many, merge
    // regardless (a run is "alone" if any chunk in it is).
    let merge = |cells: &[Cell], strict: bool| {
        let mut out: Vec<Cell> = Vec::new();
        for c in cells {
            if let Some(last) = out.last_mut() {
                let thin = (last.len as f64) * px_per_byte < min_px;
                if thin && (!strict || last.alone == c.alone) {
                    last.len += c.len;
                    last.alone |= c.alone;
                    continue;
                }
            }
            out.push(Cell { ..*c });
        }
        out
    };
    let same_kind = merge(&cells, true);
    if same_kind.len() <= budget + budget / 2 {
        return same_kind;
    }
    merge(&cells, false)
}

/// The whole picture as shapes, and its height.
fn layout(cmp: &[Comparison; 2], names: &(String, Option<String>)) -> (Vec<Shape>, i32) {
    let two = cmp[0].two;
    let longest = cmp[0].a_len.max(cmp[0].b_len).max(1);
    let px_per_byte = f64::from(BAR_PX) / longest as f64;
    let bars = if two { 4 } else { 2 };
    let budget = MAX_CELLS / bars;

    let mut shapes = Vec::new();
    let mut y = 34;
    let title = match &names.1 {
        Some(e) => format!("memfs chunks: {} → {}", names.0, e),
        None => format!("memfs chunks: {}", names.0),
    };
    shapes.push(Shape::text(MARGIN, y, title, Ink::Title));
    y += 18;

    for c in cmp {
        let label = describe(&c.chunker);
        // (label, chunks, the other file's chunks, file length)
        type Row<'a> = (String, &'a Vec<Chunk>, Option<&'a HashSet<ChunkId>>, u64);
        let mut rows: Vec<Row> = Vec::new();
        if two {
            rows.push((format!("{label}: original"), &c.a, Some(&c.b_set), c.a_len));
            rows.push((format!("{label}: edited"), &c.b, Some(&c.a_set), c.b_len));
        } else {
            rows.push((label.clone(), &c.a, None, c.a_len));
        }
        for (i, (row_label, chunks, other, len)) in rows.into_iter().enumerate() {
            y += 22;
            let name = if i == 0 {
                &names.0
            } else {
                names.1.as_ref().unwrap_or(&names.0)
            };
            let detail = format!(" — {name}, {}, {} chunks", units::bytes(len), chunks.len());
            let detail_x = MARGIN + text_px(&row_label) + 3;
            shapes.push(Shape::text(MARGIN, y, row_label, Ink::Label));
            shapes.push(Shape::text(detail_x, y, detail, Ink::Detail));
            y += 6;
            let mut cells = cells(chunks, other, px_per_byte, budget);
            // Chunks in one file only last, so that where cells share a pixel, they show.
            cells.sort_by_key(|cell| cell.alone);
            for cell in cells {
                let x0 = MARGIN + (cell.offset as f64 * px_per_byte).round() as i32;
                let x1 = MARGIN + ((cell.offset + cell.len) as f64 * px_per_byte).round() as i32;
                // A white pixel separates chunks wide enough to spare one; every chunk stays
                // at least a pixel wide however small.
                let x1 = if x1 - x0 >= 3 { x1 - 1 } else { x1.max(x0 + 1) };
                let fill = if cell.alone {
                    Fill::Alone
                } else {
                    Fill::Chunk(colour(&cell.hash))
                };
                let corners = [(x0, y), (x1, y + BAR_H)];
                shapes.push(Shape::Rect { corners, fill });
            }
            y += BAR_H;
        }
        y += 20;
        let caption = if two {
            format!(
                "{label}: {} of {} edited chunks shared, {} new — {} to store ({} of edited)",
                c.shared,
                c.b.len(),
                c.new,
                units::bytes(c.new_bytes),
                percent(c.new_bytes, c.b_len)
            )
        } else {
            format!(
                "{label}: {} chunks, {} unique — {} stored after dedup ({} of the file)",
                c.a.len(),
                c.unique,
                units::bytes(c.unique_bytes),
                percent(c.unique_bytes, c.a_len)
            )
        };
        shapes.push(Shape::text(MARGIN, y, caption, Ink::Caption));
        y += 18;
    }

    // Legend.
    y += 14;
    for (x, sample) in [(MARGIN, [40; 32]), (MARGIN + 15, [170; 32])] {
        let fill = Fill::Chunk(colour(&ChunkId::from_bytes(sample)));
        let corners = [(x, y - 11), (x + 14, y + 3)];
        shapes.push(Shape::Rect { corners, fill });
    }
    let legend_shared = if two {
        "shared chunks in the same colour (identical content in both files)"
    } else {
        "one colour per chunk content; repeated chunks share a colour"
    };
    shapes.push(Shape::text(MARGIN + 36, y, legend_shared, Ink::Body));
    if two {
        y += 22;
        let corners = [(MARGIN, y - 11), (MARGIN + 29, y + 3)];
        shapes.push(Shape::Rect {
            corners,
            fill: Fill::Alone,
        });
        shapes.push(Shape::text(
            MARGIN + 36,
            y,
            "new chunks grey, outlined red (only in this file: dropped from original, new in edited)"
                ,
            Ink::Body,
        ));
    }
    y += 22;
    let scale = format!(
        "bar width {BAR_PX} px = {}; chunks wider than 3 px separated by a white line",
        units::bytes(longest)
    );
    shapes.push(Shape::text(MARGIN, y, scale, Ink::Scale));
    y += 16;
    (shapes, y)
}

/// The SVG document of the comparison (or of one file's chunks, for a single file).
pub(super) fn draw(cmp: &[Comparison; 2], names: &(String, Option<String>)) -> Result<String> {
    let (shapes, height) = layout(cmp, names);
    let mut svg = String::new();
    let failed = |e: DrawingAreaErrorKind<_>| anyhow!("drawing the SVG: {e}");
    {
        let height = u32::try_from(height).unwrap_or(0);
        let area = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        area.fill(&WHITE).map_err(failed)?;
        for shape in shapes {
            match shape {
                Shape::Text { x, y, text, ink } => area.draw(&Text::new(text, (x, y), ink.style())),
                Shape::Rect {
                    corners,
                    fill: Fill::Chunk(colour),
                } => area.draw(&Rectangle::new(corners, colour.filled())),
                Shape::Rect {
                    corners,
                    fill: Fill::Alone,
                } => area
                    .draw(&Rectangle::new(corners, ALONE_FILL.filled()))
                    .and_then(|()| {
                        hatch(corners).into_iter().try_for_each(|line| {
                            area.draw(&PathElement::new(line, ALONE_HATCH.stroke_width(2)))
                        })
                    })
                    .and_then(|()| {
                        let outline = ALONE_OUTLINE.stroke_width(1);
                        area.draw(&Rectangle::new(corners, outline))
                    }),
            }
            .map_err(failed)?;
        }
        area.present().map_err(failed)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hatch_lines_stay_inside_their_rectangle() {
        let lines = hatch([(10, 100), (40, 126)]);
        assert!(lines.len() >= 5, "{lines:?}");
        for [(ax, ay), (bx, by)] in lines {
            assert!((10..=40).contains(&ax) && (10..=40).contains(&bx));
            assert!((100..=126).contains(&ay) && (100..=126).contains(&by));
            assert_eq!(bx - ax, ay - by, "45°");
        }
        assert!(hatch([(10, 100), (10, 126)]).is_empty());
    }

    #[test]
    fn colours_follow_the_hash() {
        let rgb = |h: &ChunkId| colour(h).to_backend_color().rgb;
        assert_eq!(
            rgb(&ChunkId::from_bytes([60; 32])),
            rgb(&ChunkId::from_bytes([60; 32]))
        );
        assert_ne!(
            rgb(&ChunkId::from_bytes([0; 32])),
            rgb(&ChunkId::from_bytes([128; 32]))
        );
        for b in [0u8, 60, 128, 200, 255] {
            let (r, g, bl) = rgb(&ChunkId::from_bytes([b; 32]));
            // Pastel: never black, never white.
            assert!(r.max(g).max(bl) > 100 && r.min(g).min(bl) < 240, "{b}");
        }
    }
}
