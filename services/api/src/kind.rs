//! What bosun knows about each kind: its names (as kubectl spells them), API versions,
//! scope, and where it lives in etcd.

use crate::v1::Kind;

/// Static facts about one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindInfo {
    pub kind: Kind,
    /// `Pod`, `CronJob`, ... as in a manifest's `kind:`.
    pub name: &'static str,
    /// Lower-case plural as in `kubectl get pods` and in etcd keys.
    pub plural: &'static str,
    /// Lower-case singular (`pod`).
    pub singular: &'static str,
    /// kubectl's short names (`po`, `cj`...).
    pub short_names: &'static [&'static str],
    /// API group (`""` for core, `batch`, `apps`).
    pub group: &'static str,
    /// The served, preferred `apiVersion`.
    pub api_version: &'static str,
    /// Older `apiVersion`s still accepted, with a deprecation warning.
    pub deprecated_api_versions: &'static [&'static str],
    /// Namespaced (everything but Node).
    pub namespaced: bool,
}

/// Every kind bosun serves, in a stable order.
pub const KINDS: &[KindInfo] = &[
    KindInfo {
        kind: Kind::Pod,
        name: "Pod",
        plural: "pods",
        singular: "pod",
        short_names: &["po"],
        group: "",
        api_version: "v1",
        deprecated_api_versions: &[],
        namespaced: true,
    },
    KindInfo {
        kind: Kind::Node,
        name: "Node",
        plural: "nodes",
        singular: "node",
        short_names: &["no"],
        group: "",
        api_version: "v1",
        deprecated_api_versions: &[],
        namespaced: false,
    },
    KindInfo {
        kind: Kind::Job,
        name: "Job",
        plural: "jobs",
        singular: "job",
        short_names: &[],
        group: "batch",
        api_version: "batch/v1",
        deprecated_api_versions: &[],
        namespaced: true,
    },
    KindInfo {
        kind: Kind::CronJob,
        name: "CronJob",
        plural: "cronjobs",
        singular: "cronjob",
        short_names: &["cj"],
        group: "batch",
        api_version: "batch/v1",
        deprecated_api_versions: &["batch/v1beta1", "batch/v2alpha1"],
        namespaced: true,
    },
    KindInfo {
        kind: Kind::DaemonSet,
        name: "DaemonSet",
        plural: "daemonsets",
        singular: "daemonset",
        short_names: &["ds"],
        group: "apps",
        api_version: "apps/v1",
        deprecated_api_versions: &["apps/v1beta2", "extensions/v1beta1"],
        namespaced: true,
    },
    KindInfo {
        kind: Kind::ControllerRevision,
        name: "ControllerRevision",
        plural: "controllerrevisions",
        singular: "controllerrevision",
        short_names: &[],
        group: "apps",
        api_version: "apps/v1",
        deprecated_api_versions: &[],
        namespaced: true,
    },
    KindInfo {
        kind: Kind::Event,
        name: "Event",
        plural: "events",
        singular: "event",
        short_names: &["ev"],
        group: "",
        api_version: "v1",
        deprecated_api_versions: &[],
        namespaced: true,
    },
    KindInfo {
        kind: Kind::Lease,
        name: "Lease",
        plural: "leases",
        singular: "lease",
        short_names: &[],
        group: "coordination.k8s.io",
        api_version: "coordination.k8s.io/v1",
        deprecated_api_versions: &[],
        namespaced: true,
    },
];

impl KindInfo {
    /// The facts for `kind`; `None` for `KIND_UNSPECIFIED`.
    pub fn of(kind: Kind) -> Option<&'static KindInfo> {
        KINDS.iter().find(|k| k.kind == kind)
    }

    /// Looks a kind up the way kubectl does: `pods`, `pod`, `po`, `Pod`, `jobs.batch`,
    /// `daemonsets.apps`, case-insensitively.
    pub fn lookup(word: &str) -> Option<&'static KindInfo> {
        let lower = word.to_ascii_lowercase();
        let (base, group) = match lower.split_once('.') {
            Some((b, g)) => (b.to_string(), Some(g.to_string())),
            None => (lower, None),
        };
        KINDS.iter().find(|k| {
            let name_matches = k.plural == base
                || k.singular == base
                || k.short_names.contains(&base.as_str())
                || k.name.eq_ignore_ascii_case(&base);
            let group_matches = group.as_deref().is_none_or(|g| g == k.group);
            name_matches && group_matches
        })
    }

    /// The kind named by a manifest's `kind:` (exact, as Kubernetes requires).
    pub fn by_manifest_kind(kind: &str) -> Option<&'static KindInfo> {
        KINDS.iter().find(|k| k.name == kind)
    }

    /// The etcd key prefix of every object of this kind: `/bosun/<plural>/`.
    pub fn etcd_prefix(&self) -> String {
        format!("/bosun/{}/", self.plural)
    }

    /// The etcd key prefix of this kind in one namespace (all of them for cluster-scoped kinds).
    pub fn etcd_namespace_prefix(&self, namespace: &str) -> String {
        if self.namespaced && !namespace.is_empty() {
            format!("/bosun/{}/{}/", self.plural, namespace)
        } else {
            self.etcd_prefix()
        }
    }

    /// The etcd key of one object. Cluster-scoped objects use `_` as their namespace segment.
    pub fn etcd_key(&self, namespace: &str, name: &str) -> String {
        if self.namespaced {
            format!("/bosun/{}/{}/{}", self.plural, namespace, name)
        } else {
            format!("/bosun/{}/_/{}", self.plural, name)
        }
    }

    /// `job.batch`, `pod`: the resource word kubectl prints before an object's name.
    pub fn resource_word(&self) -> String {
        if self.group.is_empty() {
            self.singular.to_string()
        } else {
            format!("{}.{}", self.singular, self.group)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_names_and_short_names_resolve_to_their_kind() {
        let table = [
            ("po", Kind::Pod),
            ("pods", Kind::Pod),
            ("Pod", Kind::Pod),
            ("no", Kind::Node),
            ("job", Kind::Job),
            ("jobs.batch", Kind::Job),
            ("cj", Kind::CronJob),
            ("cronjobs", Kind::CronJob),
            ("ds", Kind::DaemonSet),
            ("daemonsets.apps", Kind::DaemonSet),
            ("ev", Kind::Event),
            ("controllerrevisions", Kind::ControllerRevision),
        ];
        for (word, kind) in table {
            assert_eq!(KindInfo::lookup(word).map(|k| k.kind), Some(kind), "{word}");
        }
        assert!(KindInfo::lookup("deployments").is_none());
        assert!(KindInfo::lookup("jobs.apps").is_none());
    }

    #[test]
    fn etcd_keys_separate_namespaces_and_cluster_scope() {
        let pod = KindInfo::of(Kind::Pod).unwrap();
        assert_eq!(pod.etcd_key("default", "a"), "/bosun/pods/default/a");
        assert_eq!(pod.etcd_namespace_prefix("default"), "/bosun/pods/default/");
        assert_eq!(pod.etcd_namespace_prefix(""), "/bosun/pods/");
        let node = KindInfo::of(Kind::Node).unwrap();
        assert_eq!(node.etcd_key("ignored", "n1"), "/bosun/nodes/_/n1");
    }
}
