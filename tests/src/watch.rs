//! [`Recording`]: every change to some objects as the API stored them, watched from a
//! revision before the test changes anything, so a test checks an order or a bound on the
//! revisions themselves rather than on samples.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use bosun_api::v1::{Kind, Object};
use bosun_runtime::client::{Broker as Client, Selector, WatchEvent};

/// The watch events (bookmarks left out) of one kind and selector, from the revision the
/// recording started at, each with the instant it arrived. Stops when dropped.
pub struct Recording {
    initial: Vec<Object>,
    seen: Arc<Mutex<Vec<(Instant, WatchEvent)>>>,
    ended: Arc<Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Recording {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Recording {
    /// Lists `kind` by `selector` for the current revision and records every change after it.
    pub async fn start(client: &Client, kind: Kind, selector: &Selector) -> Recording {
        let list = client
            .list(kind, selector)
            .await
            .unwrap_or_else(|e| panic!("list {kind:?}: {e}"));
        let (initial, revision) = (list.items, list.revision);
        let mut stream = client
            .watch(kind, selector, revision)
            .await
            .unwrap_or_else(|e| panic!("watch {kind:?}: {e}"));
        let seen: Arc<Mutex<Vec<(Instant, WatchEvent)>>> = Arc::default();
        let ended: Arc<Mutex<Option<String>>> = Arc::default();
        let task = tokio::spawn({
            let (seen, ended) = (seen.clone(), ended.clone());
            async move {
                let why = loop {
                    match stream.next().await {
                        Ok(Some(WatchEvent::Bookmark(_))) => {}
                        Ok(Some(ev)) => seen.lock().unwrap().push((Instant::now(), ev)),
                        Ok(None) => break "the broker ended the watch".to_string(),
                        Err(e) => break format!("the watch failed: {e}"),
                    }
                };
                *ended.lock().unwrap() = Some(why);
            }
        });
        Recording {
            initial,
            seen,
            ended,
            task,
        }
    }

    /// The objects as they were at the revision the recording starts from (the state its
    /// first event changes).
    pub fn initial(&self) -> &[Object] {
        &self.initial
    }

    /// Every event so far with the instant it arrived; panics if the watch ended (the
    /// recording would be incomplete).
    pub fn timed_events(&self) -> Vec<(Instant, WatchEvent)> {
        if let Some(why) = self.ended.lock().unwrap().clone() {
            panic!("recording incomplete: {why}");
        }
        self.seen.lock().unwrap().clone()
    }

    /// Every event so far, oldest first (see [`Recording::timed_events`]).
    pub fn events(&self) -> Vec<WatchEvent> {
        self.timed_events().into_iter().map(|(_, ev)| ev).collect()
    }
}
