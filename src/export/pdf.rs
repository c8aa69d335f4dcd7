//! The PDF transcript: a header, then each message in order (sender, time, text with its
//! entities, reply quote, media thumbnail with name and size, poll, location, contact, service
//! event, edited marker), page numbers in the footer. Typeset by [`super::layout`], drawn with
//! krilla (fonts subset and embedded, text selectable).
//!
//! Bounded memory: krilla keeps a whole document in memory until it finishes, so the transcript
//! is drawn in volumes of [`VOLUME_PAGES`] pages, each a small krilla document that
//! [`super::merge`] splices into the one PDF file as it streams out. Memory is one volume (its
//! pages, fonts subsets and thumbnails, the latter capped at [`VOLUME_IMAGE_BYTES`] a volume)
//! plus a few bytes per PDF object for the final xref.

use std::rc::Rc;

use krilla::Document;
use krilla::SerializeSettings;
use krilla::action::{Action, LinkAction};
use krilla::annotation::{Annotation, LinkAnnotation, Target};
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect, Size};
use krilla::image::Image;
use krilla::page::PageSettings;
use krilla::paint::Fill;

use super::ExportError;
use super::describe::{attr_at, detail_lines, entity_attrs, human_size, sender_name, service_line};
use super::fonts::{Fonts, Style};
use super::layout::{Attr, Laid, Shaper, Stats};
use super::merge::Merger;
use crate::view::dto::MessageDto;

/// Pages per krilla document (volume) before it is spliced out and dropped.
pub const VOLUME_PAGES: u32 = 40;

/// Thumbnail bytes a volume may hold before it is spliced out early (a page holds a few
/// thumbnails of at most 1 MB each, so a volume stays near this).
pub const VOLUME_IMAGE_BYTES: usize = 8 << 20;

const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 48.0;
const TOP: f32 = 56.0;
const BOTTOM: f32 = PAGE_H - 56.0;
const BODY: f32 = 10.0;
const SMALL: f32 = 8.0;
const INDENT: f32 = 12.0;
const THUMB_MAX: f32 = 160.0;

/// What the header says.
pub struct Header {
    pub box_name: String,
    pub account: String,
    pub chat_title: String,
    pub chat_kind: String,
    pub period: String,
    pub exported_by: String,
    pub exported_at: String,
}

/// One message with what the source looked up for it.
pub struct Entry {
    pub msg: MessageDto,
    /// The message's time, formatted in the box's time zone.
    pub time: String,
    /// A short excerpt of the message it replies to, when that is in the chat.
    pub reply_excerpt: Option<String>,
    /// A thumbnail (JPEG, PNG or WebP bytes, decrypted in memory).
    pub thumbnail: Option<Vec<u8>>,
}

/// What a finished transcript counted.
#[derive(Debug, Default, Clone, Copy)]
pub struct Rendered {
    pub pages: u32,
    pub messages: u64,
    pub layout: Stats,
    /// Lines or images placed outside the page's printable area (always 0; checked).
    pub overflow: u64,
}

enum Item {
    Line {
        laid: Rc<Laid>,
        line: usize,
        size: f32,
        x: f32,
        width: f32,
        gray: bool,
        bar: bool,
    },
    Image {
        image: Image,
        w: f32,
        h: f32,
        bytes: usize,
    },
}

struct Placed {
    item: Item,
    y: f32,
}

/// Draws entries into volumes and hands each finished volume to the merger.
pub struct Renderer<'f, 'o> {
    shaper: Shaper<'f>,
    merger: Merger<'o>,
    title: String,
    page: Vec<Placed>,
    y: f32,
    pages_in_volume: u32,
    /// Thumbnail bytes drawn into the volume's finished pages.
    image_bytes: usize,
    doc: Option<Document>,
    done: Rendered,
}

fn settings() -> SerializeSettings {
    SerializeSettings {
        enable_tagging: false,
        xmp_metadata: false,
        ..SerializeSettings::default()
    }
}

impl<'f, 'o> Renderer<'f, 'o> {
    pub fn new(fonts: &'f Fonts, merger: Merger<'o>, title: &str) -> Renderer<'f, 'o> {
        Renderer {
            shaper: Shaper::new(fonts),
            merger,
            title: title.to_string(),
            page: Vec::new(),
            y: TOP,
            pages_in_volume: 0,
            image_bytes: 0,
            doc: None,
            done: Rendered::default(),
        }
    }

    fn text(
        &mut self,
        text: &str,
        attr_of: &dyn Fn(usize) -> Attr,
        size: f32,
        x: f32,
        gray: bool,
        bar: bool,
    ) {
        let width = PAGE_W - MARGIN - x;
        let laid = Rc::new(
            self.shaper
                .layout(text, attr_of, size, width, &mut self.done.layout),
        );
        for line in 0..laid.lines.len() {
            self.place(
                Item::Line {
                    laid: laid.clone(),
                    line,
                    size,
                    x,
                    width,
                    gray,
                    bar,
                },
                size * 1.45,
            );
        }
    }

    fn plain(&mut self, text: &str, style: Style, size: f32, x: f32, gray: bool) {
        let a = Attr {
            style: Some(style),
            ..Attr::default()
        };
        self.text(text, &|_| a.clone(), size, x, gray, false);
    }

    fn gap(&mut self, h: f32) {
        if self.y > TOP {
            self.y += h;
        }
    }

    fn place(&mut self, item: Item, h: f32) {
        if self.y + h > BOTTOM && !self.page.is_empty() {
            self.flush_page();
        }
        self.page.push(Placed { item, y: self.y });
        self.y += h;
    }

    /// The first page's header.
    pub fn header(&mut self, h: &Header) {
        self.plain(&h.chat_title, Style::Bold, 16.0, MARGIN, false);
        let lines = [
            format!("{} · {}", h.chat_kind, h.account),
            format!("Box: {}", h.box_name),
            format!("Period: {}", h.period),
            format!("Exported by {} on {}", h.exported_by, h.exported_at),
        ];
        for l in lines {
            self.plain(&l, Style::Regular, SMALL + 1.0, MARGIN, true);
        }
        self.gap(10.0);
    }

    pub fn entry(&mut self, e: Entry) -> Result<(), ExportError> {
        let m = &e.msg;
        self.done.messages += 1;
        let mut head = format!("{}  {}", sender_name(m), e.time);
        if m.edited_at.is_some() {
            head.push_str("  (edited)");
        }
        if let Some(f) = &m.forward {
            head.push_str(&format!(
                "  forwarded from {}",
                f.name.as_deref().unwrap_or("someone")
            ));
        }
        if m.status == "failed" {
            head.push_str("  (not delivered)");
        }
        self.gap(6.0);
        // Keep the sender line with the first line of what follows it.
        if self.y + (SMALL + 1.0 + BODY) * 1.45 > BOTTOM && !self.page.is_empty() {
            self.flush_page();
        }
        self.plain(&head, Style::Bold, SMALL + 1.0, MARGIN, false);
        if let Some(r) = &m.reply_to {
            let q = r.quote.clone().or_else(|| e.reply_excerpt.clone());
            let q = q.unwrap_or_else(|| format!("message {}", r.message_id));
            let a = Attr {
                style: Some(Style::Italic),
                ..Attr::default()
            };
            self.text(&q, &|_| a.clone(), SMALL + 1.0, MARGIN + INDENT, true, true);
        }
        if let Some(s) = &m.details.service {
            let line = service_line(s);
            self.plain(&line, Style::Italic, BODY, MARGIN + INDENT, true);
        }
        if let Some(media) = &m.details.media {
            if let Some(data) = e.thumbnail {
                let bytes = data.len();
                if let Some(img) = image(data) {
                    let (w, h) = img.size();
                    let scale = (THUMB_MAX / w.max(h).max(1) as f32).min(1.0);
                    let (w, h) = (w as f32 * scale, h as f32 * scale);
                    self.place(
                        Item::Image {
                            image: img,
                            w,
                            h,
                            bytes,
                        },
                        h + 4.0,
                    );
                }
            }
            let mut d = format!(
                "[{}] {}",
                m.kind,
                media.file_name.as_deref().unwrap_or("(no name)")
            );
            if let Some(sz) = media.size {
                d.push_str(&format!(", {}", human_size(sz)));
            }
            self.plain(&d, Style::Regular, SMALL + 1.0, MARGIN + INDENT, true);
        }
        if let Some(text) = &m.text {
            let attrs = entity_attrs(text, m);
            let attr_of = |i: usize| attr_at(&attrs, i);
            self.text(text, &attr_of, BODY, MARGIN + INDENT, false, false);
        }
        for line in detail_lines(m) {
            self.plain(&line, Style::Regular, BODY, MARGIN + INDENT, true);
        }
        if !m.reactions.is_empty() {
            let r: Vec<String> = m
                .reactions
                .iter()
                .map(|r| format!("{} {}", r.emoji.as_deref().unwrap_or(r.kind), r.count))
                .collect();
            self.plain(&r.join("  "), Style::Regular, SMALL, MARGIN + INDENT, true);
        }
        if self.pages_in_volume >= VOLUME_PAGES
            || (self.pages_in_volume > 0 && self.image_bytes >= VOLUME_IMAGE_BYTES)
        {
            self.finish_volume()?;
        }
        Ok(())
    }

    /// A private note: headed as one and set off by a bar, so it is never taken for a message.
    pub fn note(&mut self, by: &str, time: &str, text: &str) -> Result<(), ExportError> {
        self.gap(6.0);
        if self.y + (SMALL + 1.0 + BODY) * 1.45 > BOTTOM && !self.page.is_empty() {
            self.flush_page();
        }
        let head = format!("PRIVATE NOTE by {by}  {time}  (not sent to the customer)");
        self.plain(&head, Style::Bold, SMALL + 1.0, MARGIN, true);
        let a = Attr::default();
        self.text(text, &|_| a.clone(), BODY, MARGIN + INDENT, true, true);
        if self.pages_in_volume >= VOLUME_PAGES {
            self.finish_volume()?;
        }
        Ok(())
    }

    fn flush_page(&mut self) {
        self.done.pages += 1;
        let number = self.done.pages;
        let placed = std::mem::take(&mut self.page);
        for p in &placed {
            if let Item::Image { bytes, .. } = p.item {
                self.image_bytes += bytes;
            }
        }
        let footer = {
            let t = format!("{} · page {number}", self.title);
            let a = Attr {
                style: Some(Style::Regular),
                ..Attr::default()
            };
            Rc::new(self.shaper.layout(
                &t,
                &|_| a.clone(),
                SMALL,
                PAGE_W - 2.0 * MARGIN,
                &mut self.done.layout,
            ))
        };
        let doc = self.doc.get_or_insert_with(|| Document::new_with(settings()));
        let mut page = doc.start_page_with(PageSettings::new(Size::from_wh(PAGE_W, PAGE_H).expect("A4")));
        let mut links = Vec::new();
        {
            let mut s = page.surface();
            for p in &placed {
                draw(&mut s, &self.shaper, &p.item, p.y, &mut links, &mut self.done);
            }
            let foot = Item::Line {
                laid: footer,
                line: 0,
                size: SMALL,
                x: MARGIN,
                width: PAGE_W - 2.0 * MARGIN,
                gray: true,
                bar: false,
            };
            draw(
                &mut s,
                &self.shaper,
                &foot,
                PAGE_H - 40.0,
                &mut links,
                &mut self.done,
            );
            s.finish();
        }
        for (rect, url) in links {
            page.add_annotation(Annotation::new_link(
                LinkAnnotation::new(rect, Target::Action(Action::Link(LinkAction::new(url)))),
                None,
            ));
        }
        page.finish();
        self.y = TOP;
        self.pages_in_volume += 1;
    }

    fn finish_volume(&mut self) -> Result<(), ExportError> {
        if let Some(doc) = self.doc.take() {
            let bytes = doc
                .finish()
                .map_err(|e| ExportError::Pdf(format!("{e:?}").chars().take(200).collect()))?;
            self.merger.volume(&bytes)?;
        }
        self.pages_in_volume = 0;
        self.image_bytes = 0;
        Ok(())
    }

    /// Flushes the last page and volume and writes the file's end.
    pub fn finish(mut self) -> Result<Rendered, ExportError> {
        if !self.page.is_empty() || self.done.pages == 0 {
            self.flush_page();
        }
        self.finish_volume()?;
        self.merger.finish(&self.title)?;
        Ok(self.done)
    }
}

fn draw(
    s: &mut krilla::surface::Surface<'_>,
    shaper: &Shaper<'_>,
    item: &Item,
    y: f32,
    links: &mut Vec<(Rect, String)>,
    done: &mut Rendered,
) {
    match item {
        Item::Image { image, w, h, .. } => {
            if MARGIN + INDENT + w > PAGE_W || y + h > PAGE_H {
                done.overflow += 1;
            }
            s.push_transform(&krilla::geom::Transform::from_translate(MARGIN + INDENT, y));
            if let Some(size) = Size::from_wh(*w, *h) {
                s.draw_image(image.clone(), size);
            }
            s.pop();
        }
        Item::Line {
            laid,
            line,
            size,
            x,
            width,
            gray,
            bar,
        } => {
            let l = &laid.lines[*line];
            let baseline = y + size;
            let mut cx = if l.rtl { x + width - l.width } else { *x };
            if cx < 0.0 || cx + l.width > PAGE_W - MARGIN + 0.5 || baseline > PAGE_H {
                done.overflow += 1;
            }
            if *bar {
                rect(s, x - 6.0, y, 2.0, size * 1.45, rgb::Color::new(170, 170, 170));
            }
            for p in &l.pieces {
                let a = &laid.attrs[p.attr];
                let color = if a.link.is_some() {
                    rgb::Color::new(20, 80, 200)
                } else if a.code {
                    rgb::Color::new(150, 30, 30)
                } else if *gray {
                    rgb::Color::new(90, 90, 90)
                } else {
                    rgb::Color::black()
                };
                s.set_fill(Some(Fill {
                    paint: color.into(),
                    ..Fill::default()
                }));
                let face = shaper.faces[p.face];
                s.draw_glyphs(
                    Point::from_xy(cx, baseline),
                    &p.glyphs,
                    face.pdf.clone(),
                    &laid.text,
                    *size,
                    false,
                );
                if a.underline || a.link.is_some() {
                    rect(s, cx, baseline + 1.5, p.width, 0.5, color);
                }
                if a.strike {
                    rect(s, cx, baseline - size * 0.3, p.width, 0.5, color);
                }
                if let Some(url) = &a.link
                    && let Some(r) = Rect::from_xywh(cx, y, p.width.max(1.0), size * 1.3)
                {
                    links.push((r, url.clone()));
                }
                cx += p.width;
            }
        }
    }
}

fn rect(s: &mut krilla::surface::Surface<'_>, x: f32, y: f32, w: f32, h: f32, color: rgb::Color) {
    let mut pb = PathBuilder::new();
    if let Some(r) = Rect::from_xywh(x, y, w.max(0.1), h) {
        pb.push_rect(r);
    }
    if let Some(path) = pb.finish() {
        s.set_fill(Some(Fill {
            paint: color.into(),
            ..Fill::default()
        }));
        s.draw_path(&path);
    }
}

fn image(bytes: Vec<u8>) -> Option<Image> {
    let data = krilla::Data::from(bytes);
    let head = data.as_ref().get(..4).map(<[u8]>::to_vec).unwrap_or_default();
    match head.as_slice() {
        [0xFF, 0xD8, ..] => Image::from_jpeg(data, true).ok(),
        [0x89, b'P', b'N', b'G'] => Image::from_png(data, true).ok(),
        [b'R', b'I', b'F', b'F'] => Image::from_webp(data, true).ok(),
        [b'G', b'I', b'F', _] => Image::from_gif(data, true).ok(),
        _ => None,
    }
}
