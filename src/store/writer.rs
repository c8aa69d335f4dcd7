//! The single writer. Every change to the database goes through one thread that takes jobs off
//! a bounded queue and runs as many as are waiting (up to a weight limit) in one write
//! transaction, so a burst of ingested messages costs one commit (one fsync on the SD card), not
//! one per message. It is an OS thread, not an async task, because redb's `begin_write` and
//! `commit` block (redb issue #30); async callers await a oneshot reply.
//!
//! A job that fails rolls back the whole transaction, is answered with its error, and the other
//! jobs of that round run again in a fresh transaction: one bad batch never takes its neighbours
//! down with it. Jobs are `FnMut` for that reason.

use std::any::Any;
use std::sync::Arc;

use redb::Database;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::ctx::WriteCtx;
use super::keyring::Keyring;
use super::{Published, StoreError};

pub(super) type JobFn = Box<dyn FnMut(&mut WriteCtx<'_>) -> Result<Box<dyn Any + Send>, StoreError> + Send>;

pub(super) struct Job {
    pub run: JobFn,
    /// How much work the job is (changes in a batch), to bound one transaction's size.
    pub weight: usize,
    pub reply: oneshot::Sender<Result<Box<dyn Any + Send>, StoreError>>,
}

pub(super) struct Writer {
    pub db: Arc<Database>,
    pub keyring: Arc<Keyring>,
    pub jobs: mpsc::Receiver<Job>,
    pub publish: broadcast::Sender<Arc<Published>>,
    pub max_weight: usize,
}

impl Writer {
    pub fn run(mut self) {
        while let Some(first) = self.jobs.blocking_recv() {
            let mut round = vec![first];
            let mut weight = round[0].weight;
            while weight < self.max_weight {
                match self.jobs.try_recv() {
                    Ok(job) => {
                        weight += job.weight;
                        round.push(job);
                    }
                    Err(_) => break,
                }
            }
            self.commit_round(round);
        }
    }

    fn commit_round(&self, mut round: Vec<Job>) {
        while !round.is_empty() {
            match self.try_round(&mut round) {
                Ok((results, published)) => {
                    for (job, result) in round.drain(..).zip(results) {
                        let _ = job.reply.send(Ok(result));
                    }
                    for p in published {
                        // No receivers is fine: nobody is listening yet.
                        let _ = self.publish.send(Arc::new(p));
                    }
                }
                Err((failed, err)) => match failed {
                    Some(i) => {
                        let job = round.remove(i);
                        let _ = job.reply.send(Err(err));
                        // The rest run again without it.
                    }
                    None => {
                        // The commit itself failed: nothing of this round is stored.
                        let mut first = Some(err);
                        for job in round.drain(..) {
                            let e = first.take().unwrap_or(StoreError::BatchAborted);
                            let _ = job.reply.send(Err(e));
                        }
                    }
                },
            }
        }
    }

    /// Runs every job of the round in one transaction. On failure says which job failed
    /// (`None`: the transaction or commit itself).
    #[allow(clippy::type_complexity)]
    fn try_round(
        &self,
        round: &mut [Job],
    ) -> Result<(Vec<Box<dyn Any + Send>>, Vec<Published>), (Option<usize>, StoreError)> {
        let txn = self.db.begin_write().map_err(|e| (None, e.into()))?;
        let mut results = Vec::with_capacity(round.len());
        let mut published = Vec::new();
        for (i, job) in round.iter_mut().enumerate() {
            let mut ctx = WriteCtx::open(&txn, &self.keyring).map_err(|e| (None, e))?;
            let out = (job.run)(&mut ctx).and_then(|r| ctx.finish().map(|p| (r, p)));
            match out {
                Ok((r, p)) => {
                    results.push(r);
                    published.extend(p);
                }
                Err(e) => return Err((Some(i), e)),
            }
        }
        txn.commit().map_err(|e| (None, e.into()))?;
        Ok((results, published))
    }
}
