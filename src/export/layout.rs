//! Paragraph layout for the transcript: font fallback per character, shaping (rustybuzz, so
//! Arabic joins and marks sit on their bases), bidirectional ordering per the Unicode bidi
//! algorithm (`unicode-bidi`), line breaking per UAX #14 (`unicode-linebreak`, so CJK breaks
//! between characters) and a forced break, between grapheme clusters, inside a token wider than
//! the line.
//!
//! A character no loaded face has is replaced (U+FFFD, else `?`) before shaping and counted in
//! [`Stats::replaced`]; a `.notdef` glyph that still comes out of shaping is counted in
//! [`Stats::notdef`] and dropped from the line, so a transcript never shows an empty box.

use std::ops::Range;

use krilla::text::{GlyphId, KrillaGlyph};
use unicode_bidi::BidiInfo;
use unicode_linebreak::{BreakOpportunity, linebreaks};
use unicode_segmentation::UnicodeSegmentation;

use super::fonts::{EMOJI, Face, Fonts, Style};

/// Inline attributes of a stretch of text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attr {
    pub style: Option<Style>,
    pub link: Option<String>,
    pub underline: bool,
    pub strike: bool,
    pub code: bool,
}

/// Counters of what the layout had to do about missing glyphs (both stay 0 with the required
/// fonts for every script they cover).
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub replaced: u64,
    pub notdef: u64,
}

/// A shaped piece of one line, in visual order: one face, one attribute set.
pub struct Piece {
    pub face: usize,
    pub glyphs: Vec<KrillaGlyph>,
    /// Width in points at the layout's size.
    pub width: f32,
    pub attr: usize,
}

pub struct Line {
    pub pieces: Vec<Piece>,
    pub width: f32,
    /// The paragraph runs right to left (the line is right-aligned).
    pub rtl: bool,
}

/// A laid-out paragraph: its (cleaned) text, which the glyphs' ranges point into, and lines.
pub struct Laid {
    pub text: String,
    pub attrs: Vec<Attr>,
    pub lines: Vec<Line>,
}

struct Run {
    face: usize,
    attr: usize,
    glyphs: Vec<KrillaGlyph>,
}

/// The faces of an export, parsed once for shaping.
pub struct Shaper<'f> {
    pub faces: Vec<&'f Face>,
    hb: Vec<rustybuzz::Face<'f>>,
    /// Per style, the face indices in fallback order.
    chains: Vec<Vec<usize>>,
    emoji: usize,
}

fn is_joiner(c: char) -> bool {
    matches!(c as u32,
        0x200C..=0x200F | 0x202A..=0x202E | 0x2060..=0x2069 | 0xFE00..=0xFE0F | 0xE0000..=0xE007F
        | 0x1F3FB..=0x1F3FF | 0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
        || c == '\u{200D}'
}

fn is_emoji(c: char, next: Option<char>) -> bool {
    let u = c as u32;
    (0x1F000..=0x1FAFF).contains(&u)
        || (matches!(u, 0x2190..=0x21FF | 0x2300..=0x23FF | 0x2600..=0x27BF | 0x2B00..=0x2BFF | 0x3030 | 0x303D)
            && next == Some('\u{FE0F}'))
        || (matches!(u, 0x231A | 0x231B | 0x23E9..=0x23F3 | 0x25FD | 0x25FE | 0x2614 | 0x2615 | 0x2648..=0x2653
            | 0x267F | 0x2693 | 0x26A1 | 0x26AA | 0x26AB | 0x26BD | 0x26BE | 0x26C4 | 0x26C5 | 0x26CE | 0x26D4
            | 0x26EA | 0x26F2..=0x26F5 | 0x26FA | 0x26FD | 0x2705 | 0x270A | 0x270B | 0x2728 | 0x274C | 0x274E
            | 0x2753..=0x2755 | 0x2757 | 0x2795..=0x2797 | 0x27B0 | 0x27BF | 0x2B1B | 0x2B1C | 0x2B50 | 0x2B55))
}

impl<'f> Shaper<'f> {
    pub fn new(fonts: &'f Fonts) -> Shaper<'f> {
        let mut faces: Vec<&'f Face> = Vec::new();
        let pos =
            |f: &'f Face, faces: &mut Vec<&'f Face>| match faces.iter().position(|g| std::ptr::eq(*g, f)) {
                Some(i) => i,
                None => {
                    faces.push(f);
                    faces.len() - 1
                }
            };
        let styles = [
            Style::Regular,
            Style::Bold,
            Style::Italic,
            Style::BoldItalic,
            Style::Mono,
        ];
        let chains = styles
            .iter()
            .map(|s| fonts.chain(*s).map(|f| pos(f, &mut faces)).collect())
            .collect();
        let emoji = pos(&fonts.fallbacks[EMOJI], &mut faces);
        let hb = faces
            .iter()
            .map(|f| rustybuzz::Face::from_slice(&f.data, f.index).expect("checked when loaded"))
            .collect();
        Shaper {
            faces,
            hb,
            chains,
            emoji,
        }
    }

    fn covers(&self, face: usize, c: char) -> bool {
        self.hb[face].glyph_index(c).is_some()
    }

    /// The face for `c`: the previous one for joiners and marks, and for punctuation and spaces
    /// it has; the emoji face first for emoji; else the first face of the style's chain.
    fn pick(&self, c: char, next: Option<char>, style: Style, prev: Option<usize>) -> Option<usize> {
        if let Some(p) = prev
            && (is_joiner(c) || (!c.is_alphanumeric() && !is_emoji(c, next) && self.covers(p, c)))
        {
            return Some(p);
        }
        if is_emoji(c, next) && self.covers(self.emoji, c) {
            return Some(self.emoji);
        }
        self.chains[style as usize]
            .iter()
            .copied()
            .find(|&f| self.covers(f, c))
    }

    pub fn ascent(&self, face: usize) -> f32 {
        let hb = &self.hb[face];
        hb.ascender() as f32 / hb.units_per_em() as f32
    }

    /// Lays out `text`, whose byte `i` has attributes `attrs[attr_of[i]]`, in lines at most
    /// `width` points wide at `size` points.
    pub fn layout(
        &self,
        text: &str,
        attr_of: &dyn Fn(usize) -> Attr,
        size: f32,
        width: f32,
        stats: &mut Stats,
    ) -> Laid {
        // Clean: control characters become spaces (newlines stay: they end bidi paragraphs and
        // force breaks), characters no face has become U+FFFD or '?'.
        let mut clean = String::with_capacity(text.len());
        let mut attrs: Vec<Attr> = Vec::new();
        let mut attr_idx: Vec<u16> = Vec::with_capacity(text.len());
        let mut face_of: Vec<Option<usize>> = Vec::with_capacity(text.len());
        let mut prev = None;
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let next = chars.peek().map(|(_, n)| *n);
            let a = attr_of(i);
            let ai = match attrs.iter().position(|x| *x == a) {
                Some(p) => p,
                None => {
                    attrs.push(a.clone());
                    attrs.len() - 1
                }
            };
            let style = a.style.unwrap_or(Style::Regular);
            let (c, face) = if c == '\n' {
                prev = None;
                ('\n', None)
            } else {
                let c = if c.is_control() { ' ' } else { c };
                match self.pick(c, next, style, prev) {
                    Some(f) => (c, Some(f)),
                    None => {
                        stats.replaced += 1;
                        let r = if self.covers(self.chains[0][0], '\u{FFFD}') {
                            '\u{FFFD}'
                        } else {
                            '?'
                        };
                        (r, self.pick(r, None, style, None))
                    }
                }
            };
            if face.is_some() {
                prev = face;
            }
            clean.push(c);
            for _ in 0..c.len_utf8() {
                attr_idx.push(ai as u16);
                face_of.push(face);
            }
        }
        let bidi = BidiInfo::new(&clean, None);
        let runs = self.shape_runs(&clean, &bidi.levels, &attr_idx, &face_of);
        // Advance of each cluster, at its first byte, for measuring line candidates.
        let mut adv = vec![0f32; clean.len() + 1];
        for r in &runs {
            for g in &r.glyphs {
                adv[g.text_range.start] += g.x_advance * size;
            }
        }
        let mut prefix = vec![0f32; clean.len() + 1];
        for i in 0..clean.len() {
            prefix[i + 1] = prefix[i] + adv[i];
        }
        let breaks = break_lines(&clean, &prefix, width);
        let mut lines = Vec::new();
        for range in breaks {
            let para = bidi
                .paragraphs
                .iter()
                .find(|p| p.range.contains(&range.start))
                .unwrap_or(&bidi.paragraphs[0]);
            let trimmed = trim_end(&clean, range.clone());
            let mut pieces = Vec::new();
            if !trimmed.is_empty() {
                let (levels, vruns) = bidi.visual_runs(para, trimmed.clone());
                for vr in vruns {
                    let rtl = levels[vr.start].is_rtl();
                    let mut here: Vec<Piece> = Vec::new();
                    for r in &runs {
                        let glyphs: Vec<KrillaGlyph> = r
                            .glyphs
                            .iter()
                            .filter(|g| vr.contains(&g.text_range.start))
                            .filter(|g| {
                                if g.glyph_id.to_u32() == 0 {
                                    stats.notdef += 1;
                                    false
                                } else {
                                    true
                                }
                            })
                            .cloned()
                            .collect();
                        if glyphs.is_empty() {
                            continue;
                        }
                        let w = glyphs.iter().map(|g| g.x_advance * size).sum();
                        here.push(Piece {
                            face: r.face,
                            glyphs,
                            width: w,
                            attr: r.attr,
                        });
                    }
                    if rtl {
                        here.reverse();
                    }
                    pieces.extend(here);
                }
            }
            let width = pieces.iter().map(|p| p.width).sum();
            lines.push(Line {
                pieces,
                width,
                rtl: para.level.is_rtl(),
            });
        }
        Laid {
            text: clean,
            attrs,
            lines,
        }
    }

    /// Shapes maximal stretches of one bidi level, one face and one attribute set.
    fn shape_runs(
        &self,
        text: &str,
        levels: &[unicode_bidi::Level],
        attr_idx: &[u16],
        face_of: &[Option<usize>],
    ) -> Vec<Run> {
        let mut runs = Vec::new();
        let mut start = 0;
        let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
        for w in bounds.windows(2) {
            let (i, end) = (w[0], w[1]);
            let split = end == text.len()
                || levels[end] != levels[i]
                || attr_idx[end] != attr_idx[i]
                || face_of[end] != face_of[i];
            if !split {
                continue;
            }
            if let Some(face) = face_of[i] {
                let rtl = levels[i].is_rtl();
                runs.push(Run {
                    face,
                    attr: attr_idx[i] as usize,
                    glyphs: self.shape(face, text, start..end, rtl),
                });
            }
            start = end;
        }
        runs
    }

    fn shape(&self, face: usize, text: &str, range: Range<usize>, rtl: bool) -> Vec<KrillaGlyph> {
        let hb = &self.hb[face];
        let mut buf = rustybuzz::UnicodeBuffer::new();
        buf.push_str(&text[range.clone()]);
        buf.guess_segment_properties();
        buf.set_direction(if rtl {
            rustybuzz::Direction::RightToLeft
        } else {
            rustybuzz::Direction::LeftToRight
        });
        let out = rustybuzz::shape(hb, &[], buf);
        let upem = hb.units_per_em() as f32;
        let mut starts: Vec<usize> = out.glyph_infos().iter().map(|g| g.cluster as usize).collect();
        starts.sort_unstable();
        starts.dedup();
        let end_of = |c: usize| match starts.binary_search(&c) {
            Ok(k) if k + 1 < starts.len() => starts[k + 1],
            _ => range.len(),
        };
        out.glyph_infos()
            .iter()
            .zip(out.glyph_positions())
            .map(|(i, p)| {
                let c = i.cluster as usize;
                KrillaGlyph::new(
                    GlyphId::new(i.glyph_id),
                    p.x_advance as f32 / upem,
                    p.x_offset as f32 / upem,
                    p.y_offset as f32 / upem,
                    p.y_advance as f32 / upem,
                    range.start + c..range.start + end_of(c),
                    None,
                )
            })
            .collect()
    }
}

fn trim_end(text: &str, r: Range<usize>) -> Range<usize> {
    let s = &text[r.clone()];
    let t = s.trim_end_matches(|c: char| c.is_whitespace());
    r.start..r.start + t.len()
}

/// Greedy line breaking at UAX #14 opportunities; a stretch without one that is wider than
/// the line is cut between grapheme clusters.
fn break_lines(text: &str, prefix: &[f32], width: f32) -> Vec<Range<usize>> {
    let w = |r: Range<usize>| {
        let r = trim_end(text, r);
        prefix[r.end] - prefix[r.start]
    };
    let mut lines = Vec::new();
    let mut start = 0;
    let mut fits: Option<usize> = None;
    for (idx, opp) in linebreaks(text) {
        if w(start..idx) > width {
            if let Some(b) = fits.filter(|b| *b > start) {
                lines.push(start..b);
                start = b;
            }
            // What is left up to this opportunity may itself be too wide: cut it.
            if w(start..idx) > width {
                let mut cut = start;
                for (gi, g) in text[start..idx].grapheme_indices(true) {
                    let at = start + gi;
                    if at > cut && w(cut..at + g.len()) > width {
                        lines.push(cut..at);
                        cut = at;
                    }
                }
                start = cut;
            }
        }
        fits = Some(idx);
        if opp == BreakOpportunity::Mandatory {
            lines.push(start..idx);
            start = idx;
            fits = None;
        }
    }
    if lines.is_empty() {
        lines.push(0..text.len());
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_tokens_are_cut_and_lines_fit() {
        let text = "x".repeat(1000);
        let mut prefix = vec![0f32; text.len() + 1];
        for i in 0..text.len() {
            prefix[i + 1] = prefix[i] + 5.0;
        }
        let lines = break_lines(&text, &prefix, 100.0);
        assert_eq!(lines.len(), 50);
        assert!(lines.iter().all(|l| l.len() == 20));
    }

    #[test]
    fn breaks_at_spaces_and_newlines() {
        let text = "aaa bbb ccc\nddd";
        let prefix: Vec<f32> = (0..=text.len()).map(|i| i as f32).collect();
        let lines = break_lines(text, &prefix, 7.5);
        let got: Vec<&str> = lines.iter().map(|r| text[r.clone()].trim_end()).collect();
        assert_eq!(got, ["aaa bbb", "ccc", "ddd"]);
    }
}
