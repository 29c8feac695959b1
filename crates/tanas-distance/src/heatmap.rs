//! Heatmaps of a [`DistanceMatrix`] (or any task-by-task [`Heatmap`]): one figure, mean and std panels side by side, values
//! printed in the cells (3 decimals), rows = source task, columns = target task, written as SVG
//! and PNG with plotters.
//!
//! Text is laid out and rasterised with a font embedded in the crate
//! (`assets/fonts/DejaVuSans-subset.ttf`, a Latin-1 subset of DejaVu Sans, licence beside it), so
//! the PNG needs no system font. The SVG names the generic `sans-serif` family and is rendered by
//! the viewer's font.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{DistanceError, Result};
use crate::matrix::{DistanceMatrix, Grid};

/// The embedded font (DejaVu Sans, Latin-1 subset; see `assets/fonts/LICENSE`).
static FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans-subset.ttf");

/// Registers the embedded font as `sans-serif` once per process.
fn ensure_font() -> std::result::Result<(), String> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err("the embedded font could not be loaded".to_string())
    }
}

/// The paths [`Heatmap::write`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeatmapFiles {
    /// `<stem>.svg`.
    pub svg: PathBuf,
    /// `<stem>.png`.
    pub png: PathBuf,
}

const PAD: i32 = 18;
const GAP: i32 = 48;
const TITLE_SIZE: f64 = 24.0;
const SUB_SIZE: f64 = 19.0;
const LABEL_SIZE: f64 = 17.0;
const AXIS_SIZE: f64 = 16.0;
const NOTE_SIZE: f64 = 15.0;
const TICK_SIZE: f64 = 14.0;
const BAR_W: i32 = 14;
const BAR_STEPS: i32 = 64;

/// Matplotlib's viridis at 9 evenly spaced points.
const VIRIDIS: [(u8, u8, u8); 9] = [
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 144, 141),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
];

/// Viridis at `t` in `[0, 1]`, linearly interpolated.
fn viridis(t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (VIRIDIS.len() - 1) as f64;
    let i = (x.floor() as usize).min(VIRIDIS.len() - 2);
    let f = x - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    let mix = |p: u8, q: u8| (f64::from(p) + f * (f64::from(q) - f64::from(p))).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Black or white, whichever reads better on `c`.
fn text_on(c: RGBColor) -> RGBColor {
    let l = 0.299 * f64::from(c.0) + 0.587 * f64::from(c.1) + 0.114 * f64::from(c.2);
    if l > 140.0 { BLACK } else { WHITE }
}

/// The width and height of `text` at `size` in the embedded font.
fn text_size(text: &str, size: f64) -> std::result::Result<(i32, i32), String> {
    let (w, h) = FontDesc::new(FontFamily::SansSerif, size, FontStyle::Normal)
        .box_size(text)
        .map_err(|e| e.to_string())?;
    Ok((w as i32, h as i32))
}

/// One panel: a matrix of optional values and its subtitle.
struct Panel {
    subtitle: String,
    values: Grid,
    /// The colour range (min, max) over the panel's values.
    range: (f64, f64),
}

impl Panel {
    fn new(subtitle: String, values: Grid) -> Self {
        let vals: Vec<f64> = values.iter().flatten().flatten().copied().collect();
        let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let range = if vals.is_empty() {
            (0.0, 1.0)
        } else {
            (lo, hi)
        };
        Self {
            subtitle,
            values,
            range,
        }
    }

    fn t(&self, v: f64) -> f64 {
        let (lo, hi) = self.range;
        if hi > lo { (v - lo) / (hi - lo) } else { 0.5 }
    }

    fn ticks(&self) -> [f64; 3] {
        let (lo, hi) = self.range;
        [hi, 0.5 * (lo + hi), lo]
    }
}

/// Positions of everything in the figure, in pixels.
struct Layout {
    n: i32,
    cell: i32,
    value_size: f64,
    title: String,
    note: String,
    tasks: Vec<String>,
    label_w: i32,
    rotate_cols: bool,
    col_label_h: i32,
    tick_w: i32,
    panel_w: i32,
    width: i32,
    height: i32,
    title_h: i32,
    panels: [Panel; 2],
}

const SUB_H: i32 = 30;
const AXIS_H: i32 = 24;
const AXIS_W: i32 = 26;
const NOTE_H: i32 = 28;

impl Layout {
    fn new(fig: &Heatmap) -> std::result::Result<Self, String> {
        ensure_font()?;
        let tasks = fig.tasks.clone();
        let n = tasks.len() as i32;
        let cell = (640 / n.max(1)).clamp(48, 100);
        let value_size = (f64::from(cell) * 0.24).clamp(12.0, 21.0);
        let seeds = seeds_text(fig.seeds);
        let title = fig.title.clone();
        let note = fig.note.clone();
        let panels = [
            Panel::new(format!("mean over {seeds}"), fig.mean.clone()),
            Panel::new(format!("std over {seeds} (n - 1)"), fig.std.clone()),
        ];

        let mut label_w = 0;
        let mut label_h = 0;
        for t in &tasks {
            let (w, h) = text_size(t, LABEL_SIZE)?;
            label_w = label_w.max(w);
            label_h = label_h.max(h);
        }
        let rotate_cols = label_w + 8 > cell;
        let col_label_h = if rotate_cols {
            label_w + 10
        } else {
            label_h + 10
        };
        let mut tick_w = 0;
        for p in &panels {
            for v in p.ticks() {
                tick_w = tick_w.max(text_size(&format!("{v:.3}"), TICK_SIZE)?.0);
            }
        }
        let panel_w = AXIS_W + label_w + 10 + n * cell + 12 + BAR_W + 6 + tick_w;
        let panel_h = SUB_H + AXIS_H + col_label_h + n * cell;
        let title_h = 40;
        let (title_w, _) = text_size(&title, TITLE_SIZE)?;
        let (note_w, _) = text_size(&note, NOTE_SIZE)?;
        let width = (2 * PAD + 2 * panel_w + GAP).max(2 * PAD + title_w.max(note_w));
        let height = PAD + title_h + panel_h + NOTE_H + PAD;
        Ok(Self {
            n,
            cell,
            value_size,
            title,
            note,
            tasks,
            label_w,
            rotate_cols,
            col_label_h,
            tick_w,
            panel_w,
            width,
            height,
            title_h,
            panels,
        })
    }

    /// The left edge of panel `k` (panels centred when the title is wider than them).
    fn panel_x(&self, k: i32) -> i32 {
        let used = 2 * self.panel_w + GAP;
        let x0 = (self.width - used) / 2;
        x0 + k * (self.panel_w + GAP)
    }
}

/// Draws the figure on `area`. `raster_fix` moves centred text down by that fraction of its
/// size: plotters' raster text sits higher than its SVG text for the same anchor.
fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    lay: &Layout,
    raster_fix: f64,
) -> std::result::Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    area.fill(&WHITE).map_err(e)?;
    let font = |size: f64| FontDesc::new(FontFamily::SansSerif, size, FontStyle::Normal);
    let fix = |size: f64| (raster_fix * size).round() as i32;
    let text = |s: &str, (x, y): (i32, i32), size: f64, color: RGBColor| {
        let style = TextStyle::from(font(size))
            .color(&color)
            .pos(Pos::new(HPos::Center, VPos::Center));
        area.draw(&Text::new(s.to_string(), (x, y + fix(size)), style))
            .map_err(e)
    };

    text(
        &lay.title,
        (lay.width / 2, PAD + lay.title_h / 2 - 4),
        TITLE_SIZE,
        BLACK,
    )?;
    let grey = RGBColor(90, 90, 90);
    text(
        &lay.note,
        (lay.width / 2, lay.height - PAD - NOTE_H / 2 + 4),
        NOTE_SIZE,
        grey,
    )?;

    let (n, cell) = (lay.n, lay.cell);
    let top = PAD + lay.title_h;
    for (k, panel) in lay.panels.iter().enumerate() {
        let px = lay.panel_x(k as i32);
        let gx = px + AXIS_W + lay.label_w + 10;
        let gy = top + SUB_H + AXIS_H + lay.col_label_h;
        let grid_w = n * cell;

        text(
            &panel.subtitle,
            (gx + grid_w / 2, top + SUB_H / 2),
            SUB_SIZE,
            BLACK,
        )?;
        text(
            "target task b",
            (gx + grid_w / 2, top + SUB_H + AXIS_H / 2),
            AXIS_SIZE,
            grey,
        )?;
        let vertical = TextStyle::from(font(AXIS_SIZE).transform(FontTransform::Rotate270))
            .color(&grey)
            .pos(Pos::new(HPos::Center, VPos::Center));
        area.draw(&Text::new(
            "source task a".to_string(),
            (px + AXIS_W / 2, gy + grid_w / 2),
            vertical,
        ))
        .map_err(e)?;

        for (i, task) in lay.tasks.iter().enumerate() {
            let c = i as i32 * cell + cell / 2;
            // Row label, right-aligned against the grid.
            let row_style = TextStyle::from(font(LABEL_SIZE))
                .color(&BLACK)
                .pos(Pos::new(HPos::Right, VPos::Center));
            area.draw(&Text::new(
                task.clone(),
                (gx - 8, gy + c + fix(LABEL_SIZE)),
                row_style,
            ))
            .map_err(e)?;
            // Column label, above the grid.
            if lay.rotate_cols {
                let style = TextStyle::from(font(LABEL_SIZE).transform(FontTransform::Rotate270))
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Left, VPos::Center));
                area.draw(&Text::new(task.clone(), (gx + c, gy - 6), style))
                    .map_err(e)?;
            } else {
                text(task, (gx + c, gy - lay.col_label_h / 2), LABEL_SIZE, BLACK)?;
            }
        }

        for (i, row) in panel.values.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                let (x0, y0) = (gx + j as i32 * cell, gy + i as i32 * cell);
                let (fill, label, ink) = match v {
                    Some(v) => {
                        let c = viridis(panel.t(*v));
                        (c, format!("{v:.3}"), text_on(c))
                    }
                    None => (RGBColor(225, 225, 225), "n/a".to_string(), grey),
                };
                area.draw(&Rectangle::new(
                    [(x0, y0), (x0 + cell, y0 + cell)],
                    fill.filled(),
                ))
                .map_err(e)?;
                area.draw(&Rectangle::new(
                    [(x0, y0), (x0 + cell, y0 + cell)],
                    WHITE.stroke_width(1),
                ))
                .map_err(e)?;
                text(&label, (x0 + cell / 2, y0 + cell / 2), lay.value_size, ink)?;
            }
        }

        // Colour bar with min / mid / max ticks.
        let bx = gx + grid_w + 12;
        for s in 0..BAR_STEPS {
            let y0 = gy + s * grid_w / BAR_STEPS;
            let y1 = gy + (s + 1) * grid_w / BAR_STEPS;
            let t = 1.0 - (f64::from(s) + 0.5) / f64::from(BAR_STEPS);
            area.draw(&Rectangle::new(
                [(bx, y0), (bx + BAR_W, y1)],
                viridis(t).filled(),
            ))
            .map_err(e)?;
        }
        area.draw(&Rectangle::new(
            [(bx, gy), (bx + BAR_W, gy + grid_w)],
            grey.stroke_width(1),
        ))
        .map_err(e)?;
        let tick_style = TextStyle::from(font(TICK_SIZE))
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        let flat = panel.range.0 >= panel.range.1;
        for (q, v) in panel.ticks().iter().enumerate() {
            if flat && q != 1 {
                continue;
            }
            let y = gy + (q as i32) * grid_w / 2;
            let y = y.clamp(gy + 7, gy + grid_w - 7);
            area.draw(&Text::new(
                format!("{v:.3}"),
                (bx + BAR_W + 5, y + fix(TICK_SIZE)),
                tick_style.clone(),
            ))
            .map_err(e)?;
        }
        debug_assert!(bx + BAR_W + 5 + lay.tick_w <= px + lay.panel_w + 1);
    }
    area.present().map_err(e)
}

/// "1 seed" / "k seeds".
fn seeds_text(k: usize) -> String {
    if k == 1 {
        "1 seed".to_string()
    } else {
        format!("{k} seeds")
    }
}

/// A heatmap figure of any square task-by-task grid over seeds (a distance matrix, a transfer
/// gain matrix): its mean and std panels side by side, values printed in the cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap {
    /// The figure's title.
    pub title: String,
    /// The line under the panels (what rows, columns and cells are).
    pub note: String,
    /// The task ids: the row and the column order.
    pub tasks: Vec<String>,
    /// The number of seeds the panels summarise.
    pub seeds: usize,
    /// The mean panel, `[row][column]`.
    pub mean: Grid,
    /// The std panel, `[row][column]`.
    pub std: Grid,
}

impl DistanceMatrix {
    /// The matrix's heatmap figure.
    pub fn heatmap(&self) -> Heatmap {
        Heatmap {
            title: format!(
                "{} task distance, {}, heads: {}",
                self.metric().label(),
                seeds_text(self.num_seeds()),
                self.head()
            ),
            note: "rows: source task a (network trained on a); columns: target task b \
                   (its probe data); cell: d(F[a,b], F[b,b])"
                .to_string(),
            tasks: self.tasks().to_vec(),
            seeds: self.num_seeds(),
            mean: self.mean(),
            std: self.std(),
        }
    }

    /// The size in pixels (width, height) of [`Self::heatmap`], the same for SVG and PNG.
    pub fn heatmap_size(&self) -> Result<(u32, u32)> {
        self.heatmap().size()
    }

    /// [`Self::heatmap`] as an SVG document.
    pub fn heatmap_svg(&self) -> Result<String> {
        self.heatmap().svg()
    }

    /// [`Self::heatmap`] as PNG bytes (RGB, 8 bit).
    pub fn heatmap_png(&self) -> Result<Vec<u8>> {
        self.heatmap().png()
    }

    /// Writes [`Self::heatmap`] to `<dir>/<stem>.svg` and `<dir>/<stem>.png`
    /// ([`Heatmap::write`]).
    pub fn write_heatmaps(&self, dir: impl AsRef<Path>, stem: &str) -> Result<HeatmapFiles> {
        self.heatmap().write(dir, stem)
    }
}

impl Heatmap {
    /// The size in pixels (width, height) of the figure, the same for SVG and PNG.
    pub fn size(&self) -> Result<(u32, u32)> {
        let lay = Layout::new(self).map_err(|problem| DistanceError::Plot {
            path: PathBuf::from("<heatmap>"),
            problem,
        })?;
        Ok((lay.width as u32, lay.height as u32))
    }

    /// The figure as an SVG document.
    pub fn svg(&self) -> Result<String> {
        self.svg_string().map_err(|problem| DistanceError::Plot {
            path: PathBuf::from("<heatmap>"),
            problem,
        })
    }

    /// The figure as PNG bytes (RGB, 8 bit).
    pub fn png(&self) -> Result<Vec<u8>> {
        self.png_bytes().map_err(|problem| DistanceError::Plot {
            path: PathBuf::from("<heatmap>"),
            problem,
        })
    }

    fn svg_string(&self) -> std::result::Result<String, String> {
        let lay = Layout::new(self)?;
        let mut out = String::new();
        {
            let area = SVGBackend::with_string(&mut out, (lay.width as u32, lay.height as u32))
                .into_drawing_area();
            draw(&area, &lay, 0.0)?;
        }
        Ok(out)
    }

    fn png_bytes(&self) -> std::result::Result<Vec<u8>, String> {
        let lay = Layout::new(self)?;
        let (w, h) = (lay.width as u32, lay.height as u32);
        let mut rgb = vec![255u8; w as usize * h as usize * 3];
        {
            let area = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
            draw(&area, &lay, 0.22)?;
        }
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(&rgb).map_err(|e| e.to_string())?;
        writer.finish().map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// Writes `<dir>/<stem>.svg` and `<dir>/<stem>.png` (each atomically), creating `dir` if
    /// needed: one figure with the mean and std panels side by side.
    pub fn write(&self, dir: impl AsRef<Path>, stem: &str) -> Result<HeatmapFiles> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| DistanceError::io(dir, e))?;
        let svg = dir.join(format!("{stem}.svg"));
        let png = dir.join(format!("{stem}.png"));
        let plot_err = |path: &Path| {
            let path = path.to_path_buf();
            move |problem| DistanceError::Plot { path, problem }
        };
        let svg_text = self.svg_string().map_err(plot_err(&svg))?;
        let png_bytes = self.png_bytes().map_err(plot_err(&png))?;
        for (path, bytes) in [(&svg, svg_text.as_bytes()), (&png, &png_bytes[..])] {
            tanas_core::write_atomic(path, bytes)
                .map_err(|e| DistanceError::io(e.path, e.source))?;
        }
        Ok(HeatmapFiles { svg, png })
    }
}
