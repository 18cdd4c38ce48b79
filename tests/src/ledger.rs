//! [`PodLedger`]: what a watch over Job pods saw, folded revision by revision, to check the
//! invariants a Job must keep whatever happens to its controllers (kills, pauses, network
//! cuts, several replicas): never more pods running than `parallelism`, never two pods
//! running for one completion index at once, no index (or pod beyond `completions`) counted
//! twice, no pod name used twice; and for a DaemonSet, never two pods running on one node.
//!
//! Pure: fed [`WatchEvent`]s in order, it never talks to the broker, so its rules are tested
//! here on hand-made events.

use std::collections::{BTreeMap, HashMap, HashSet};

use bosun_api::v1::{self, Object};
use bosun_runtime::client::WatchEvent;

/// The annotation carrying an Indexed Job pod's completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";

/// One pod as last seen.
#[derive(Debug, Clone)]
struct Seen {
    job: String,
    index: Option<i64>,
    /// Its node: `spec.nodeName`, or before the bind the one node its affinity pins it to.
    node: Option<String>,
    finished: bool,
    deleting: bool,
}

impl Seen {
    fn running(&self) -> bool {
        !self.finished && !self.deleting
    }
}

/// Per Job, what the watch saw.
#[derive(Debug, Default, Clone)]
pub struct JobLedger {
    /// The most pods running (not finished, not being deleted) at any one revision.
    pub max_running: usize,
    /// The most pods running for one completion index at any one revision.
    pub max_running_per_index: usize,
    /// The most pods running on one node at any one revision.
    pub max_running_per_node: usize,
    /// Uids of the pods seen Succeeded, by completion index (`-1`: NonIndexed).
    pub succeeded: BTreeMap<i64, HashSet<String>>,
    /// Every pod of the Job seen at all.
    pub pods_seen: usize,
}

impl JobLedger {
    /// Pods seen Succeeded.
    pub fn succeeded_total(&self) -> usize {
        self.succeeded.values().map(HashSet::len).sum()
    }

    /// Indexes that more than one pod completed.
    pub fn indexes_counted_twice(&self) -> Vec<i64> {
        self.succeeded
            .iter()
            .filter(|(i, uids)| **i >= 0 && uids.len() > 1)
            .map(|(i, _)| *i)
            .collect()
    }
}

/// What the watch saw of every Job's pods (by the Job named in the pod's `job-name` label,
/// else its controller ownerReference).
#[derive(Debug, Default)]
pub struct PodLedger {
    pods: HashMap<String, Seen>,
    /// Every pod name ever added, with how many distinct uids carried it.
    names: HashMap<String, HashSet<String>>,
    jobs: BTreeMap<String, JobLedger>,
    /// The revision whose events are all applied.
    revision: i64,
}

impl PodLedger {
    /// Starts from a listed state at `revision`.
    pub fn new(initial: &[Object], revision: i64) -> PodLedger {
        let mut ledger = PodLedger {
            revision,
            ..Default::default()
        };
        for obj in initial {
            ledger.upsert(obj);
        }
        ledger.measure();
        ledger
    }

    /// Applies one watch event (in the order the watch delivered them).
    pub fn apply(&mut self, event: &WatchEvent) {
        let rev = event.revision();
        if rev > self.revision {
            // Every event up to `self.revision` is in: measure that state (one revision can
            // carry many pods' changes; never measure half of one).
            self.measure();
            self.revision = rev;
        }
        match event {
            WatchEvent::Added(o) | WatchEvent::Modified(o) => self.upsert(o),
            WatchEvent::Deleted(o) => {
                self.pods.remove(o.uid());
            }
            WatchEvent::Bookmark(_) => {}
        }
    }

    /// Measures the state after the last event (call once the watch is done).
    pub fn finish(&mut self) {
        self.measure();
    }

    /// The revision applied up to.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The ledger of `job` (empty if none of its pods was seen).
    pub fn job(&self, job: &str) -> JobLedger {
        self.jobs.get(job).cloned().unwrap_or_default()
    }

    /// Pod names that two different pods (uids) carried.
    pub fn names_used_twice(&self) -> Vec<String> {
        let mut twice: Vec<String> = self
            .names
            .iter()
            .filter(|(_, uids)| uids.len() > 1)
            .map(|(n, _)| n.clone())
            .collect();
        twice.sort();
        twice
    }

    fn upsert(&mut self, obj: &Object) {
        let Some(pod) = obj.as_pod() else { return };
        let Some(meta) = pod.metadata.as_ref() else {
            return;
        };
        let job = meta
            .labels
            .get("job-name")
            .cloned()
            .or_else(|| obj.controller_ref().map(|r| r.name.clone()))
            .unwrap_or_default();
        let phase = pod.status.as_ref().map(|s| s.phase.as_str()).unwrap_or("");
        let index = meta
            .annotations
            .get(COMPLETION_INDEX)
            .and_then(|v| v.parse().ok());
        let node = pod.spec.as_ref().and_then(|spec| {
            if !spec.node_name.is_empty() {
                return Some(spec.node_name.clone());
            }
            let required = spec
                .affinity
                .as_ref()?
                .node_affinity
                .as_ref()?
                .required_during_scheduling_ignored_during_execution
                .as_ref();
            let pinned = bosun_api::nodematch::pinned_node_names(required)?;
            (pinned.len() == 1).then(|| pinned.into_iter().next().unwrap_or_default().to_string())
        });
        let uid = meta.uid.clone();
        self.names
            .entry(meta.name.clone())
            .or_default()
            .insert(uid.clone());
        let ledger = self.jobs.entry(job.clone()).or_default();
        if !self.pods.contains_key(&uid) {
            ledger.pods_seen += 1;
        }
        if phase == "Succeeded" {
            ledger
                .succeeded
                .entry(index.unwrap_or(-1))
                .or_default()
                .insert(uid.clone());
        }
        self.pods.insert(
            uid,
            Seen {
                job,
                index,
                node,
                finished: matches!(phase, "Succeeded" | "Failed"),
                deleting: !meta.deletion_timestamp.is_empty(),
            },
        );
    }

    fn measure(&mut self) {
        let mut running: HashMap<&str, usize> = HashMap::new();
        let mut per_index: HashMap<(&str, i64), usize> = HashMap::new();
        let mut per_node: HashMap<(&str, &str), usize> = HashMap::new();
        for seen in self.pods.values().filter(|s| s.running()) {
            *running.entry(&seen.job).or_default() += 1;
            if let Some(i) = seen.index {
                *per_index.entry((&seen.job, i)).or_default() += 1;
            }
            if let Some(node) = &seen.node {
                *per_node.entry((&seen.job, node)).or_default() += 1;
            }
        }
        for ((job, _), n) in per_node {
            let ledger = self.jobs.entry(job.to_string()).or_default();
            ledger.max_running_per_node = ledger.max_running_per_node.max(n);
        }
        for (job, n) in running {
            let ledger = self.jobs.entry(job.to_string()).or_default();
            ledger.max_running = ledger.max_running.max(n);
        }
        for ((job, _), n) in per_index {
            let ledger = self.jobs.entry(job.to_string()).or_default();
            ledger.max_running_per_index = ledger.max_running_per_index.max(n);
        }
    }
}

/// A pod of `job` for the tests below and for callers building expectations.
pub fn job_pod(job: &str, name: &str, uid: &str, index: Option<i64>, phase: &str) -> Object {
    v1::Pod {
        metadata: Some(v1::ObjectMeta {
            name: name.into(),
            namespace: "default".into(),
            uid: uid.into(),
            labels: [("job-name".to_string(), job.to_string())].into(),
            annotations: index
                .map(|i| (COMPLETION_INDEX.to_string(), i.to_string()))
                .into_iter()
                .collect(),
            ..Default::default()
        }),
        status: Some(v1::PodStatus {
            phase: phase.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rev: i64, mut obj: Object) -> Object {
        obj.meta_mut().resource_version = rev.to_string();
        obj
    }

    fn added(rev: i64, obj: Object) -> WatchEvent {
        WatchEvent::Added(at(rev, obj))
    }

    fn modified(rev: i64, obj: Object) -> WatchEvent {
        WatchEvent::Modified(at(rev, obj))
    }

    #[test]
    fn two_pods_of_one_index_running_at_one_revision_are_seen() {
        let mut l = PodLedger::new(&[], 1);
        l.apply(&added(2, job_pod("j", "j-0-a", "a", Some(0), "Running")));
        // A second pod for index 0 while the first still runs (a duplicate creator).
        l.apply(&added(3, job_pod("j", "j-0-b", "b", Some(0), "Pending")));
        l.apply(&modified(
            4,
            job_pod("j", "j-0-a", "a", Some(0), "Succeeded"),
        ));
        l.finish();
        let j = l.job("j");
        assert_eq!(j.max_running_per_index, 2);
        assert_eq!(j.max_running, 2);
    }

    #[test]
    fn a_replacement_after_the_first_finished_is_not_a_duplicate() {
        let mut l = PodLedger::new(&[], 1);
        l.apply(&added(2, job_pod("j", "j-0-a", "a", Some(0), "Running")));
        l.apply(&modified(3, job_pod("j", "j-0-a", "a", Some(0), "Failed")));
        l.apply(&added(4, job_pod("j", "j-0-b", "b", Some(0), "Running")));
        l.apply(&modified(
            5,
            job_pod("j", "j-0-b", "b", Some(0), "Succeeded"),
        ));
        l.finish();
        let j = l.job("j");
        assert_eq!(j.max_running_per_index, 1);
        assert_eq!(j.succeeded_total(), 1);
        assert!(j.indexes_counted_twice().is_empty());
        assert_eq!(j.pods_seen, 2);
    }

    #[test]
    fn changes_within_one_revision_are_measured_together() {
        // One etcd txn (one revision) finished a and started b: never two running at once.
        let mut l = PodLedger::new(&[job_pod("j", "j-a", "a", None, "Running")], 1);
        l.apply(&modified(2, job_pod("j", "j-a", "a", None, "Succeeded")));
        l.apply(&added(2, job_pod("j", "j-b", "b", None, "Running")));
        l.finish();
        assert_eq!(l.job("j").max_running, 1);
    }

    fn on_node(mut obj: Object, node: &str) -> Object {
        if let Some(v1::object::Object::Pod(p)) = &mut obj.object {
            p.spec.get_or_insert_default().node_name = node.into();
        }
        obj
    }

    #[test]
    fn two_pods_of_one_owner_running_on_one_node_are_seen() {
        let mut l = PodLedger::new(&[], 1);
        l.apply(&added(
            2,
            on_node(job_pod("ds", "ds-a", "a", None, "Running"), "n1"),
        ));
        l.apply(&added(
            3,
            on_node(job_pod("ds", "ds-b", "b", None, "Running"), "n2"),
        ));
        l.finish();
        assert_eq!(l.job("ds").max_running_per_node, 1);
        l.apply(&added(
            4,
            on_node(job_pod("ds", "ds-c", "c", None, "Pending"), "n1"),
        ));
        l.finish();
        assert_eq!(l.job("ds").max_running_per_node, 2);
    }

    #[test]
    fn an_index_completed_twice_and_a_name_reused_are_reported() {
        let mut l = PodLedger::new(&[], 1);
        l.apply(&added(2, job_pod("j", "j-0", "a", Some(0), "Succeeded")));
        l.apply(&WatchEvent::Deleted(at(
            3,
            job_pod("j", "j-0", "a", Some(0), "Succeeded"),
        )));
        l.apply(&added(4, job_pod("j", "j-0", "b", Some(0), "Succeeded")));
        l.finish();
        assert_eq!(l.job("j").indexes_counted_twice(), vec![0]);
        assert_eq!(l.names_used_twice(), vec!["j-0".to_string()]);
        assert_eq!(l.job("other").pods_seen, 0);
    }
}
