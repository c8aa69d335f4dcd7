//! What the benchmarks share, included by each with `#[path = "common/mod.rs"] mod common;`:
//!
//! - [`words`] and [`corpus`]: the synthetic message corpus (ingest, search and footprint run on
//!   the same one for the same seed and shape);
//! - [`measure`]: figures about this process and machine (CPU time, peak RSS, load) and the
//!   median of repeated runs.
//!
//! A benchmark uses only some of it, hence `dead_code` is allowed here.
#![allow(dead_code)]

pub mod corpus;
pub mod measure;
pub mod words;
