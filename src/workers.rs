//! Where Rooms and Games run: on the HTTP workers' threads, in turn.
//!
//! Sessions live on the actix-web workers' threads. A Room on any other
//! thread makes each chat line cross threads twice (session → room →
//! members), and every crossing may have to wake a sleeping thread: a
//! system call on each side and a context switch. So the Lobby starts each
//! Room and Game on a worker's arbiter, taking the workers in turn. With one
//! worker (`server.workers = 1`, or one core) a room and all its members
//! share a thread and nothing crosses; with more, a room still shares its
//! thread with about one member in `workers`.
//!
//! Each worker registers itself as it builds its app ([`Workers::register_current`]).
//! Until one has (and in unit tests with no server), actors start on the
//! caller's own arbiter.

use std::{
    future,
    sync::{Mutex, MutexGuard, PoisonError},
    thread::{self, ThreadId},
};

use actix::prelude::*;
use actix_rt::ArbiterHandle;

/// The workers' arbiters, taken in turn.
#[derive(Default)]
pub struct Workers(Mutex<Turns>);

/// The arbiters and whose turn it is.
#[derive(Default)]
struct Turns {
    /// One arbiter per worker thread.
    arbiters: Vec<(ThreadId, ArbiterHandle)>,
    /// Which worker takes the next actor.
    next: usize,
}

impl Workers {
    /// No workers yet.
    pub fn new() -> Workers {
        Workers::default()
    }

    /// Adds the calling thread's arbiter, once per thread; does nothing
    /// outside an arbiter.
    pub fn register_current(&self) {
        let Some(arbiter) = Arbiter::try_current() else {
            return;
        };
        let thread = thread::current().id();
        let arbiters = &mut self.lock().arbiters;
        if arbiters.iter().all(|(known, _)| *known != thread) {
            arbiters.push((thread, arbiter));
        }
    }

    /// How many workers are registered.
    pub fn count(&self) -> usize {
        self.lock().arbiters.len()
    }

    /// Starts an actor on the next worker's arbiter, or on the caller's
    /// arbiter if no worker is running.
    pub fn start<A>(&self, make: impl FnOnce(&mut Context<A>) -> A + Send + 'static) -> Addr<A>
    where
        A: Actor<Context = Context<A>>,
    {
        match self.next_live() {
            Some(arbiter) => A::start_in_arbiter(&arbiter, make),
            None => A::create(make),
        }
    }

    /// The next worker's arbiter that still runs; forgets any that stopped
    /// (a worker that failed and was replaced registers anew).
    fn next_live(&self) -> Option<ArbiterHandle> {
        let mut turns = self.lock();
        while !turns.arbiters.is_empty() {
            let index = turns.next % turns.arbiters.len();
            let arbiter = turns.arbiters[index].1.clone();
            // Probing wakes the worker once; rooms and games start seldom.
            if arbiter.spawn(future::ready(())) {
                turns.next = index + 1;
                return Some(arbiter);
            }
            turns.arbiters.swap_remove(index);
        }
        None
    }

    fn lock(&self) -> MutexGuard<'_, Turns> {
        // The list stays valid whatever a panicking holder was doing.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use super::*;

    struct Where;

    impl Actor for Where {
        type Context = Context<Self>;
    }

    #[derive(Message)]
    #[rtype(result = "ThreadId")]
    struct WhichThread;

    impl Handler<WhichThread> for Where {
        type Result = MessageResult<WhichThread>;
        fn handle(&mut self, _: WhichThread, _: &mut Context<Self>) -> Self::Result {
            MessageResult(thread::current().id())
        }
    }

    async fn thread_of_next(workers: &Workers) -> ThreadId {
        let addr = workers.start(|_| Where);
        addr.send(WhichThread).await.expect("the actor runs")
    }

    #[actix_rt::test]
    async fn without_workers_actors_start_here() {
        let here = thread::current().id();
        assert_eq!(thread_of_next(&Workers::new()).await, here);
    }

    #[actix_rt::test]
    async fn actors_start_on_the_registered_workers_in_turn() {
        let workers = Arc::new(Workers::new());
        let (first, second) = (Arbiter::new(), Arbiter::new());
        for arbiter in [&first, &second] {
            let workers = workers.clone();
            arbiter.spawn(async move { workers.register_current() });
        }
        while workers.count() < 2 {
            actix_rt::time::sleep(Duration::from_millis(5)).await;
        }
        let mut threads = Vec::new();
        for _ in 0..4 {
            threads.push(thread_of_next(&workers).await);
        }
        assert_ne!(threads[0], thread::current().id());
        assert_ne!(threads[0], threads[1]);
        assert_eq!(threads[0], threads[2]);
        assert_eq!(threads[1], threads[3]);

        // A worker that stopped is skipped and forgotten.
        first.stop();
        first.join().expect("the first worker stops");
        let after = [
            thread_of_next(&workers).await,
            thread_of_next(&workers).await,
        ];
        assert_eq!(after[0], after[1]);
        assert!(threads[..2].contains(&after[0]));
        assert_eq!(workers.count(), 1);
        second.stop();
    }
}
