//! Coalescing: the Redis steps that every call of a process takes one by one (the dial mark,
//! the live-call slot taken and given back, the final ack) gathered across the process's
//! concurrent calls and sent together — one script call per partition or company instead of
//! one per call, so Redis and the worker pay one round trip and one script run for a group.
//!
//! Each caller still gets its own answer, in order, exactly as if its step had run alone. A
//! writer task takes whatever is waiting (up to a maximum) and sends it; a lone step is not
//! delayed (the writer sends a group of one). A failed send fails every step of that group
//! with the same error; the calls are then left to recovery, as when a single step fails.
//! The writer tasks end when the [`Coalesce`] is dropped.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::{Error, Result};

type Reply<O> = oneshot::Sender<Result<O>>;
type Waiting<I, O> = Arc<Mutex<mpsc::UnboundedReceiver<(I, Reply<O>)>>>;

/// Sends a group of steps; one answer per step, in order.
pub(crate) type SendFn<I, O> =
    Arc<dyn Fn(Vec<I>) -> BoxFuture<'static, Result<Vec<O>>> + Send + Sync>;

/// One kind of coalesced step.
pub(crate) struct Coalesce<I, O> {
    sender: mpsc::UnboundedSender<(I, Reply<O>)>,
}

impl<I: Send + 'static, O: Send + 'static> Coalesce<I, O> {
    /// Starts `writers` writer tasks on the current runtime, each sending at most `max`
    /// steps at once through `send`.
    pub(crate) fn start(writers: usize, max: usize, send: SendFn<I, O>) -> Self {
        let (sender, rx) = mpsc::unbounded_channel();
        let rx: Waiting<I, O> = Arc::new(Mutex::new(rx));
        for _ in 0..writers.max(1) {
            tokio::spawn(write(Arc::clone(&rx), max.max(1), Arc::clone(&send)));
        }
        Coalesce { sender }
    }

    /// Runs `item` with whatever other steps are waiting; its own answer.
    pub(crate) async fn run(&self, item: I) -> Result<O> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send((item, reply))
            .map_err(|_| Error::Stopped)?;
        answer.await.map_err(|_| Error::Stopped)?
    }
}

async fn write<I, O>(waiting: Waiting<I, O>, max: usize, send: SendFn<I, O>) {
    loop {
        let group = {
            let mut rx = waiting.lock().await;
            let Some(first) = rx.recv().await else {
                return;
            };
            let mut group = vec![first];
            while group.len() < max {
                match rx.try_recv() {
                    Ok(next) => group.push(next),
                    Err(_) => break,
                }
            }
            group
        };
        let (items, replies): (Vec<I>, Vec<Reply<O>>) = group.into_iter().unzip();
        let n = items.len();
        match send(items).await {
            Ok(answers) if answers.len() == n => {
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(Ok(answer));
                }
            }
            Ok(_) => {
                for reply in replies {
                    let _ = reply.send(Err(Error::Stopped));
                }
            }
            Err(e) => {
                let e = Arc::new(e);
                for reply in replies {
                    let _ = reply.send(Err(Error::Group(Arc::clone(&e))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_steps_are_sent_together_and_each_gets_its_own_answer() {
        let groups = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = Arc::clone(&groups);
        let double: Coalesce<u32, u32> = Coalesce::start(
            1,
            16,
            Arc::new(move |items: Vec<u32>| {
                seen.lock().unwrap().push(items.len());
                Box::pin(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    Ok(items.iter().map(|i| i * 2).collect())
                })
            }),
        );
        let double = Arc::new(double);
        let tasks: Vec<_> = (0..100u32)
            .map(|i| {
                let d = Arc::clone(&double);
                tokio::spawn(async move { (i, d.run(i).await.unwrap()) })
            })
            .collect();
        for t in tasks {
            let (i, doubled) = t.await.unwrap();
            assert_eq!(doubled, i * 2);
        }
        let groups = groups.lock().unwrap();
        assert_eq!(groups.iter().sum::<usize>(), 100);
        assert!(groups.iter().all(|n| *n <= 16), "{groups:?}");
        assert!(groups.len() < 100, "nothing was sent together: {groups:?}");
    }

    #[tokio::test]
    async fn a_failed_group_fails_each_of_its_steps() {
        let fail: Coalesce<u32, u32> = Coalesce::start(
            1,
            16,
            Arc::new(|_| {
                Box::pin(async { Err(Error::Queue(outdial_queue::Error::Config("redis down"))) })
            }),
        );
        let (a, b) = tokio::join!(fail.run(1), fail.run(2));
        for r in [a, b] {
            assert!(matches!(r, Err(Error::Group(_))), "{r:?}");
        }
    }
}
