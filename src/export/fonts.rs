//! The fonts of the PDF transcript, read from files on the box (never built into the binary):
//! Debian's Noto fonts, found by file name anywhere under a configurable directory
//! (`[export] fonts_dir`, default `/usr/share/fonts`).
//!
//! Required (a missing one fails the export with [`ExportError::FontsMissing`] naming the
//! Debian package, before any byte of PDF is sent): Noto Sans in four styles, Noto Sans Arabic
//! (`fonts-noto-core`), Noto Sans CJK (`fonts-noto-cjk`) and Noto Color Emoji
//! (`fonts-noto-color-emoji`). Optional fonts (more scripts, symbols, a monospace face for code)
//! are used when present.
//!
//! The files are read when an export starts and dropped when it ends (about 40 MB, most of it
//! the CJK collection); nothing is cached between exports.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::ExportError;

/// A face of the transcript's main text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Style {
    Regular,
    Bold,
    Italic,
    BoldItalic,
    Mono,
}

struct Wanted {
    file: &'static str,
    index: u32,
    package: &'static str,
    required: bool,
}

const fn want(file: &'static str, package: &'static str, required: bool) -> Wanted {
    Wanted {
        file,
        index: 0,
        package,
        required,
    }
}

/// The style faces, in [`Style`] order (the mono face falls back to the regular one).
const STYLES: [&[Wanted]; 5] = [
    &[want("NotoSans-Regular.ttf", "fonts-noto-core", true)],
    &[want("NotoSans-Bold.ttf", "fonts-noto-core", true)],
    &[want("NotoSans-Italic.ttf", "fonts-noto-core", true)],
    &[want("NotoSans-BoldItalic.ttf", "fonts-noto-core", true)],
    &[
        want("NotoSansMono-Regular.ttf", "fonts-noto-mono", false),
        want("DejaVuSansMono.ttf", "fonts-dejavu-core", false),
    ],
];

/// Fallbacks, tried in order for a character the style face lacks. Index 0 of the CJK
/// collection is Noto Sans CJK JP: Han, kana and Hangul in one face.
const FALLBACKS: &[Wanted] = &[
    want("NotoSansArabic-Regular.ttf", "fonts-noto-core", true),
    want("NotoSansCJK-Regular.ttc", "fonts-noto-cjk", true),
    want("NotoColorEmoji.ttf", "fonts-noto-color-emoji", true),
    want("NotoSansHebrew-Regular.ttf", "fonts-noto-core", false),
    want("NotoSansDevanagari-Regular.ttf", "fonts-noto-core", false),
    want("NotoSansThai-Regular.ttf", "fonts-noto-core", false),
    want("NotoSansArmenian-Regular.ttf", "fonts-noto-core", false),
    want("NotoSansGeorgian-Regular.ttf", "fonts-noto-core", false),
    want("NotoSansBengali-Regular.ttf", "fonts-noto-core", false),
    want("NotoSansSymbols-Regular.ttf", "fonts-noto-core", false),
    want("NotoSansSymbols2-Regular.ttf", "fonts-noto-core", false),
    want("NotoSansMath-Regular.ttf", "fonts-noto-core", false),
];

/// Index into [`FALLBACKS`] of the emoji face (tried first for emoji).
pub const EMOJI: usize = 2;

/// One loaded face: its bytes (shared with krilla) and the krilla handle.
pub struct Face {
    pub data: Arc<Vec<u8>>,
    pub index: u32,
    pub pdf: krilla::text::Font,
    pub file: &'static str,
}

/// The loaded faces of one export.
pub struct Fonts {
    /// Per [`Style`]; `None` for a missing optional face.
    pub styles: Vec<Option<Face>>,
    pub fallbacks: Vec<Face>,
}

/// The Debian packages the required fonts come from, for error messages and the docs.
pub const PACKAGES: &str = "fonts-noto-core, fonts-noto-cjk, fonts-noto-color-emoji";

impl Fonts {
    /// Finds and reads the fonts under `dir` (searched three levels deep, as Debian lays out
    /// `/usr/share/fonts/{truetype,opentype}/noto/`).
    pub fn load(dir: &Path) -> Result<Fonts, ExportError> {
        let mut found = HashMap::new();
        index_dir(dir, 0, &mut found);
        let mut missing: Vec<&'static str> = Vec::new();
        let mut open = |w: &Wanted| -> Result<Option<Face>, ExportError> {
            let Some(path) = found.get(w.file) else {
                if w.required && !missing.contains(&w.package) {
                    missing.push(w.package);
                }
                return Ok(None);
            };
            let bytes = std::fs::read(path).map_err(|e| ExportError::FontUnreadable {
                file: w.file,
                detail: e.kind().to_string(),
            })?;
            let data = Arc::new(bytes);
            let pdf = krilla::text::Font::new(krilla::Data::from(data.clone()), w.index).ok_or(
                ExportError::FontUnreadable {
                    file: w.file,
                    detail: "not a font krilla can read".into(),
                },
            )?;
            if rustybuzz::Face::from_slice(&data, w.index).is_none() {
                return Err(ExportError::FontUnreadable {
                    file: w.file,
                    detail: "not a font the shaper can read".into(),
                });
            }
            Ok(Some(Face {
                data,
                index: w.index,
                pdf,
                file: w.file,
            }))
        };
        let mut styles = Vec::new();
        for choices in STYLES {
            let mut face = None;
            for w in choices {
                if let Some(f) = open(w)? {
                    face = Some(f);
                    break;
                }
            }
            styles.push(face);
        }
        let mut fallbacks = Vec::new();
        // The required faces come first, so EMOJI stays their index (a missing one fails
        // below anyway).
        for w in FALLBACKS {
            if let Some(f) = open(w)? {
                fallbacks.push(f);
            }
        }
        if !missing.is_empty() {
            return Err(ExportError::FontsMissing {
                packages: missing.join(", "),
                dir: dir.display().to_string(),
            });
        }
        Ok(Fonts { styles, fallbacks })
    }

    /// Every face in fallback order for `style`: its own face, the regular one (for the mono
    /// style), then the fallbacks.
    pub fn chain(&self, style: Style) -> impl Iterator<Item = &Face> {
        let own = self.styles[style as usize].as_ref();
        let regular = (style == Style::Mono).then(|| self.styles[0].as_ref()).flatten();
        own.into_iter().chain(regular).chain(self.fallbacks.iter())
    }
}

fn index_dir(dir: &Path, depth: u32, found: &mut HashMap<String, PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() || (kind.is_symlink() && path.is_dir()) {
            if depth < 3 {
                index_dir(&path, depth + 1, found);
            }
        } else if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
            found.entry(name.to_string()).or_insert(path);
        }
    }
}
