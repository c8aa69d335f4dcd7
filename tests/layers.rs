//! Guards the architecture `src/lib.rs` declares.
//!
//! Regression: the running service once lived inside the HTTP layer, so `api` imported `app`
//! and `live` and `attachments` imported `api` back (one import circle of six files, five
//! smaller ones). This test reads every `crate::` path in `src/` and fails when a module uses
//! one at its own layer or above (the order is the "Layers, lowest first" line of `lib.rs`'s
//! tour), or when the files of `src/` import each other in a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The layer order from `lib.rs`: one set of modules per layer, lowest first.
fn declared_layers() -> Vec<Vec<String>> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let mut text = String::new();
    let mut inside = false;
    for line in lib.lines() {
        let Some(doc) = line.strip_prefix("//!") else {
            break;
        };
        let doc = doc.trim();
        if let Some(rest) = doc.strip_prefix("Layers, lowest first:") {
            inside = true;
            text.push_str(rest);
        } else if inside && !doc.is_empty() {
            text.push(' ');
            text.push_str(doc);
        } else if inside {
            break;
        }
    }
    assert!(
        !text.is_empty(),
        "lib.rs's tour must declare \"Layers, lowest first: ...\""
    );
    text.split('<')
        .map(|layer| layer.split(',').map(|m| m.trim().to_string()).collect())
        .collect()
}

/// The module path of a file: `src/api/ws/socket.rs` is `api::ws::socket`, a `mod.rs` is its
/// directory, `main.rs` is `main`.
fn module_of(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src()).unwrap();
    let mut parts: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts
}

/// Code without comments and string literals (doc links name modules without using them).
fn code_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let (mut in_str, mut in_line_comment, mut block) = (false, false, 0u32);
    while let Some(c) = chars.next() {
        if in_line_comment {
            if c == '\n' {
                in_line_comment = false;
                out.push('\n');
            }
        } else if block > 0 {
            if c == '*' && chars.peek() == Some(&'/') {
                chars.next();
                block -= 1;
            } else if c == '/' && chars.peek() == Some(&'*') {
                chars.next();
                block += 1;
            }
        } else if in_str {
            if c == '\\' {
                chars.next();
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '/' && chars.peek() == Some(&'/') {
            in_line_comment = true;
        } else if c == '/' && chars.peek() == Some(&'*') {
            chars.next();
            block += 1;
        } else if c == '"' {
            in_str = true;
        } else if c == '\'' {
            // A char literal like '"' must not open a string; lifetimes pass through.
            let rest: String = chars.clone().take(3).collect();
            if rest.starts_with("\\") || rest.chars().nth(1) == Some('\'') {
                for x in chars.by_ref() {
                    if x == '\'' {
                        break;
                    }
                }
            }
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// Every path the code names, `use` trees expanded: `crate::a::{b, c::d}` gives `crate::a::b`
/// and `crate::a::c::d`.
fn paths_in(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word =
            i == 0 || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_' || bytes[i - 1] == ':');
        if starts_word && (bytes[i].is_alphabetic() || bytes[i] == '_') {
            let (paths, next) = parse_tree(&bytes, i);
            out.extend(paths.into_iter().filter(|p| p.len() > 1));
            i = next.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

fn ident(s: &[char], mut i: usize) -> (String, usize) {
    let start = i;
    while i < s.len() && (s[i].is_alphanumeric() || s[i] == '_') {
        i += 1;
    }
    (s[start..i].iter().collect(), i)
}

fn skip_ws(s: &[char], mut i: usize) -> usize {
    while i < s.len() && s[i].is_whitespace() {
        i += 1;
    }
    i
}

/// Parses `a::b::{c, d::e}` from `i`; returns the expanded paths and where parsing stopped.
fn parse_tree(s: &[char], i: usize) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    let mut i = i;
    loop {
        let (id, next) = ident(s, i);
        if id.is_empty() {
            return (vec![prefix], i);
        }
        prefix.push(id);
        i = next;
        let j = skip_ws(s, i);
        if s.get(j) == Some(&':') && s.get(j + 1) == Some(&':') {
            i = skip_ws(s, j + 2);
            if s.get(i) == Some(&'{') {
                let mut all = Vec::new();
                i += 1;
                loop {
                    i = skip_ws(s, i);
                    match s.get(i) {
                        Some('}') => return (all, i + 1),
                        Some(',') => i += 1,
                        None => return (all, i),
                        _ => {
                            let (subs, next) = parse_tree(s, i);
                            for sub in subs {
                                let mut p = prefix.clone();
                                p.extend(sub);
                                all.push(p);
                            }
                            i = next.max(i + 1);
                        }
                    }
                }
            }
        } else {
            return (vec![prefix], i);
        }
    }
}

/// Absolute module path a path refers to, from inside `module`, or `None` when it is not a
/// path into this crate.
fn absolute(module: &[String], is_main: bool, path: &[String]) -> Option<Vec<String>> {
    let mut here: Vec<String> = module.to_vec();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") if !is_main => {
            here.clear();
            rest = &rest[1..];
        }
        Some("lanbox") if is_main => {
            here.clear();
            rest = &rest[1..];
        }
        Some("super") | Some("self") if !is_main => {
            while let Some(first) = rest.first() {
                match first.as_str() {
                    "super" => {
                        here.pop()?;
                    }
                    "self" => {}
                    _ => break,
                }
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    here.extend(rest.iter().cloned());
    Some(here)
}

struct Crate {
    /// Module path of every file.
    files: BTreeMap<Vec<String>, PathBuf>,
    /// Module path -> the absolute paths its code names.
    uses: BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
}

fn read_crate() -> Crate {
    let mut list = Vec::new();
    rust_files(&src(), &mut list);
    let mut files = BTreeMap::new();
    let mut uses = BTreeMap::new();
    for f in list {
        let module = if f.ends_with("src/main.rs") {
            vec!["main".to_string()]
        } else {
            module_of(&f)
        };
        let code = code_of(&std::fs::read_to_string(&f).unwrap());
        let is_main = module == ["main"];
        let named: BTreeSet<Vec<String>> = paths_in(&code)
            .iter()
            .filter_map(|p| absolute(if is_main { &[] } else { &module }, is_main, p))
            .collect();
        uses.insert(module.clone(), named);
        files.insert(module, f);
    }
    Crate { files, uses }
}

#[test]
fn modules_use_only_lower_layers() {
    let layers = declared_layers();
    let rank: BTreeMap<&str, usize> = layers
        .iter()
        .enumerate()
        .flat_map(|(i, l)| l.iter().map(move |m| (m.as_str(), i)))
        .collect();
    let krate = read_crate();
    let tops: BTreeSet<&str> = krate
        .files
        .keys()
        .filter_map(|m| m.first().map(String::as_str))
        .collect();
    for top in &tops {
        assert!(
            rank.contains_key(top),
            "module `{top}` is missing from lib.rs's layer order"
        );
    }
    let mut wrong = Vec::new();
    for (module, named) in &krate.uses {
        let Some(from) = module.first() else { continue };
        for path in named {
            let Some(to) = path.first() else { continue };
            if to == from || !tops.contains(to.as_str()) {
                continue;
            }
            if rank[to.as_str()] >= rank[from.as_str()] {
                wrong.push(format!("{} uses {}", module.join("::"), path.join("::")));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layer order:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_import_circle_between_files() {
    let krate = read_crate();
    // File -> files whose modules its paths land in (the longest module prefix of each path).
    let mut edges: BTreeMap<&Vec<String>, BTreeSet<&Vec<String>>> = BTreeMap::new();
    for (module, named) in &krate.uses {
        let e = edges.entry(module).or_default();
        for path in named {
            let target = (1..=path.len())
                .rev()
                .find_map(|n| krate.files.get_key_value(&path[..n]).map(|(k, _)| k));
            // A submodule naming what its parent module holds (`use super::Shared`) stays
            // inside that module: such a circle is the module's own business.
            if let Some(t) = target
                && t != module
                && !module.starts_with(t)
            {
                e.insert(t);
            }
        }
    }
    // Tarjan's strongly connected components; any with more than one file is a circle.
    struct T<'a> {
        edges: &'a BTreeMap<&'a Vec<String>, BTreeSet<&'a Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on: BTreeSet<&'a Vec<String>>,
        circles: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a Vec<String>) {
        let i = t.index.len();
        t.index.insert(v, i);
        t.low.insert(v, i);
        t.stack.push(v);
        t.on.insert(v);
        let next: Vec<&Vec<String>> = t
            .edges
            .get(v)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        for w in next {
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(w.join("::"));
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.circles.push(comp);
            }
        }
    }
    let mut t = T {
        edges: &edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        circles: Vec::new(),
    };
    let all: Vec<&Vec<String>> = krate.files.keys().collect();
    for v in all {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    let report: Vec<String> = t.circles.iter().map(|c| c.join(" <-> ")).collect();
    assert!(
        report.is_empty(),
        "{} import circles between files:\n{}",
        report.len(),
        report.join("\n")
    );
}
