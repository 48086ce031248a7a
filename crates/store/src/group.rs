//! Group commit: concurrent callers' writes of one kind (call results, dial intents,
//! delivered webhooks) are gathered and written together, in one transaction or one
//! statement, so that many calls share one commit (one WAL flush) and fewer round trips.
//!
//! Each caller still gets its own answer, exactly as if its write had run alone: a write
//! function answers one result per item, in order. The first caller of a kind starts its
//! writer tasks on the current tokio runtime; a writer takes whatever is waiting (up to a
//! maximum) and writes it; the tasks end when the last `Store` clone is dropped. A writer
//! that finds nothing waiting writes a group of one, so a lone call is not delayed.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::{Error, Result};

type Reply<O> = oneshot::Sender<Result<O>>;
type Queue<I, O> = Arc<Mutex<mpsc::UnboundedReceiver<(I, Reply<O>)>>>;

/// The future a write function returns: one result per item, in order.
pub(crate) type Written<O> = Pin<Box<dyn Future<Output = Vec<Result<O>>> + Send>>;

/// Writes a group of items.
pub(crate) type WriteFn<I, O> = fn(PgPool, Vec<I>) -> Written<O>;

/// One kind of grouped write.
pub(crate) struct Group<I, O> {
    sender: OnceLock<mpsc::UnboundedSender<(I, Reply<O>)>>,
    /// Writer tasks (groups written at once).
    writers: usize,
    /// The most items in one group.
    max: usize,
    write: WriteFn<I, O>,
}

impl<I, O> fmt::Debug for Group<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("started", &self.sender.get().is_some())
            .field("writers", &self.writers)
            .field("max", &self.max)
            .finish()
    }
}

impl<I: Send + 'static, O: Send + 'static> Group<I, O> {
    pub(crate) fn new(writers: usize, max: usize, write: WriteFn<I, O>) -> Self {
        Group {
            sender: OnceLock::new(),
            writers: writers.max(1),
            max: max.max(1),
            write,
        }
    }

    /// Writes `item` with whatever other items are waiting; its own result.
    pub(crate) async fn submit(&self, pool: &PgPool, item: I) -> Result<O> {
        let sender = self.sender.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let rx: Queue<I, O> = Arc::new(Mutex::new(rx));
            for _ in 0..self.writers {
                tokio::spawn(run(pool.clone(), Arc::clone(&rx), self.max, self.write));
            }
            tx
        });
        let (reply, answer) = oneshot::channel();
        sender
            .send((item, reply))
            .map_err(|_| Error::Database(sqlx::Error::PoolClosed))?;
        answer
            .await
            .map_err(|_| Error::Database(sqlx::Error::PoolClosed))?
    }
}

async fn run<I, O>(pool: PgPool, queue: Queue<I, O>, max: usize, write: WriteFn<I, O>) {
    loop {
        let batch = {
            let mut rx = queue.lock().await;
            let Some(first) = rx.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < max {
                match rx.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            batch
        };
        let (items, replies): (Vec<I>, Vec<Reply<O>>) = batch.into_iter().unzip();
        let results = write(pool.clone(), items).await;
        // A write function that answered too few results leaves the rest to the caller's
        // closed-channel error: never a wrong answer.
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}
