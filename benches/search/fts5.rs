//! The baseline: SQLite FTS5 (bundled SQLite) fed the same changes and asked the same queries.
//!
//! One FTS5 table, one row per message: the text lanbox indexes (`searchable_parts`, joined by
//! newlines) plus UNINDEXED filter columns, `unicode61 remove_diacritics 2`. New messages get
//! rowids in ingest order, which in this corpus is also date order, so `ORDER BY rowid DESC`
//! (FTS5's fast path) is newest first. Edits update the row, deletes delete it. WAL with
//! `synchronous=FULL` and one transaction per batch (redb commits each batch durably too); a
//! 64 MiB page cache like lanbox's redb cache. After the build the index is merged with FTS5's
//! `optimize` (timed separately), the best case for its queries and size.

use std::collections::HashMap;
use std::error::Error;
use std::path::Path;

use lanbox::ingest::apply::scope_for;
use lanbox::ingest::{Batch, Change};
use lanbox::model::Message;
use lanbox::search::terms::searchable_parts;
use rusqlite::{Connection, params};

use super::queries::{BenchQuery, fts_where};

type Res<T> = Result<T, Box<dyn Error>>;

pub struct Fts {
    conn: Connection,
    rowids: HashMap<(u64, i64, i64), i64>,
    next: i64,
}

/// Bytes of pages, from SQLite's `dbstat`.
#[derive(Debug, Default, Clone, Copy)]
pub struct FtsSizes {
    /// The inverted index and its bookkeeping (`_data`, `_idx`, `_docsize`, `_config`).
    pub index: u64,
    /// The stored text and filter columns (`_content`).
    pub content: u64,
    pub file: u64,
}

impl Fts {
    pub fn open(path: &Path) -> Res<Fts> {
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-65536;
             CREATE VIRTUAL TABLE msg USING fts5(body, account UNINDEXED, chat UNINDEXED,
                 sender UNINDEXED, direction UNINDEXED, kind UNINDEXED, date UNINDEXED,
                 tokenize = 'unicode61 remove_diacritics 2');",
        )?;
        conn.set_prepared_statement_cache_capacity(512);
        Ok(Fts {
            conn,
            rowids: HashMap::new(),
            next: 1,
        })
    }

    fn key(account: u64, m: &Message) -> (u64, i64, i64) {
        (scope_for(account, m.chat.kind), m.chat.id, m.message_id)
    }

    /// The rowid a message got (to compare result sets).
    pub fn rowid(&self, scope: u64, chat: i64, msg: i64) -> Option<i64> {
        self.rowids.get(&(scope, chat, msg)).copied()
    }

    /// The stored text of a row (to show why the engines disagree).
    pub fn body(&self, rowid: i64) -> Res<String> {
        Ok(self
            .conn
            .query_row("SELECT body FROM msg WHERE rowid = ?1", [rowid], |r| r.get(0))?)
    }

    /// Applies one batch in one transaction.
    pub fn apply(&mut self, batch: &Batch) -> Res<()> {
        let tx = self.conn.transaction()?;
        {
            let mut ins = tx.prepare_cached(
                "INSERT INTO msg(rowid, body, account, chat, sender, direction, kind, date)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            let mut upd =
                tx.prepare_cached("UPDATE msg SET body = ?2, kind = ?3, sender = ?4 WHERE rowid = ?1")?;
            let mut del = tx.prepare_cached("DELETE FROM msg WHERE rowid = ?1")?;
            let a = batch.account;
            for change in &batch.changes {
                match change {
                    Change::New(m) | Change::Edit(m) => {
                        let body = searchable_parts(&m.content).join("\n");
                        let kind = m.content.body.kind().code();
                        let sender = m.content.sender.id();
                        let key = Self::key(a, m);
                        match self.rowids.get(&key) {
                            Some(&rowid) if matches!(change, Change::Edit(_)) => {
                                upd.execute(params![rowid, body, kind, sender])?;
                            }
                            Some(_) => {}
                            None => {
                                let rowid = self.next;
                                self.next += 1;
                                self.rowids.insert(key, rowid);
                                let dir = m.direction as u8;
                                ins.execute(params![
                                    rowid, body, a as i64, m.chat.id, sender, dir, kind, m.date
                                ])?;
                            }
                        }
                    }
                    Change::Delete {
                        chat, message_ids, ..
                    } => {
                        for &id in message_ids {
                            if let Some(rowid) = self.rowids.remove(&(scope_for(a, chat.kind), chat.id, id)) {
                                del.execute(params![rowid])?;
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Merges the index into one segment (FTS5 `optimize`) and checkpoints the WAL.
    pub fn optimize(&mut self) -> Res<()> {
        self.conn.execute("INSERT INTO msg(msg) VALUES('optimize')", [])?;
        self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
        Ok(())
    }

    pub fn sizes(&self) -> Res<FtsSizes> {
        let mut s = FtsSizes::default();
        let mut stmt = self
            .conn
            .prepare("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (name, bytes) = row?;
            let bytes = bytes as u64;
            s.file += bytes;
            match name.as_str() {
                "msg_content" => s.content += bytes,
                n if n.starts_with("msg_") => s.index += bytes,
                _ => {}
            }
        }
        Ok(s)
    }

    /// Runs a query (first page, with snippets); returns the rowids, newest first.
    pub fn query(&self, q: &BenchQuery, limit: usize) -> Res<Vec<i64>> {
        let sql = format!(
            "SELECT rowid, snippet(msg, 0, '«', '»', '…', 16) FROM msg WHERE msg MATCH ?1{} \
             ORDER BY rowid DESC LIMIT {limit}",
            fts_where(&q.filter)
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut out = Vec::with_capacity(limit);
        let mut rows = stmt.query([&q.fts])?;
        while let Some(r) = rows.next()? {
            let _snippet: String = r.get(1)?;
            out.push(r.get(0)?);
        }
        Ok(out)
    }
}
