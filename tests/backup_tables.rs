//! Every redb table declared anywhere in `src/` is one a backup copies (or one of the store's
//! scratch tables). Regression: the user-account connector's two new tables were missing from
//! `backup::tables::ALL`, so once an account had been released (the release opens both to
//! drop its rows, which creates them) every backup failed with "tables this lanbox does not
//! know" (a 500 on the page; seen in CI's browser run).

use std::path::Path;

fn declared(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            declared(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            let mut rest = text.as_str();
            while let Some(at) = rest.find("TableDefinition::new(\"") {
                rest = &rest[at + "TableDefinition::new(\"".len()..];
                let end = rest.find('"').unwrap();
                out.push((rest[..end].to_string(), path.display().to_string()));
                rest = &rest[end..];
            }
        }
    }
}

#[test]
fn every_declared_table_is_backed_up() {
    let mut tables = Vec::new();
    declared(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut tables);
    assert!(tables.len() > 40, "found only {} tables", tables.len());
    let missing: Vec<_> = tables
        .iter()
        .filter(|(name, _)| {
            lanbox::backup::tables::by_name(name).is_none()
                && !lanbox::store::tables::SCRATCH.contains(&name.as_str())
        })
        .collect();
    assert!(
        missing.is_empty(),
        "tables a backup does not copy (add them to backup::tables::ALL): {missing:?}"
    );
}
