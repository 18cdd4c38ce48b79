//! The words of the Kubernetes API that bosun's services read and write: pod phases,
//! condition types and statuses, taint keys and effects, finalizer names, deletion
//! propagation policies, event types, well-known labels, and the default broker address.
//!
//! Every service spells these through the constants below, never as string literals: a typo
//! in a phase or a finalizer name would silently never match.

/// Pod phases (`status.phase`).
pub mod phase {
    /// Accepted, not yet running all its containers (also: not yet bound to a node).
    pub const PENDING: &str = "Pending";
    /// Bound to a node, at least one container running or starting.
    pub const RUNNING: &str = "Running";
    /// Every container ended with exit code 0 and will not be restarted.
    pub const SUCCEEDED: &str = "Succeeded";
    /// Every container ended and at least one failed.
    pub const FAILED: &str = "Failed";
    /// The node could not report the pod's state.
    pub const UNKNOWN: &str = "Unknown";
}

/// Condition statuses (`status.conditions[].status`).
pub mod status {
    /// The condition holds.
    pub const TRUE: &str = "True";
    /// The condition does not hold.
    pub const FALSE: &str = "False";
    /// Nobody knows (a node whose agent went silent).
    pub const UNKNOWN: &str = "Unknown";
}

/// Condition types of pods, nodes and Jobs.
pub mod condition {
    /// Pod and Node: ready to serve.
    pub const READY: &str = "Ready";
    /// Pod: bound to a node (or why not).
    pub const POD_SCHEDULED: &str = "PodScheduled";
    /// Pod: init containers finished.
    pub const INITIALIZED: &str = "Initialized";
    /// Pod: every container ready.
    pub const CONTAINERS_READY: &str = "ContainersReady";
    /// Pod: about to be deleted by a disruption (eviction, taint manager, preemption).
    pub const DISRUPTION_TARGET: &str = "DisruptionTarget";
    /// Job: finished successfully.
    pub const COMPLETE: &str = "Complete";
    /// Job: finished unsuccessfully.
    pub const FAILED: &str = "Failed";
    /// Job: suspended (True) or resumed (False).
    pub const SUSPENDED: &str = "Suspended";
    /// Job: will fail once its pods are gone.
    pub const FAILURE_TARGET: &str = "FailureTarget";
    /// Job: will complete once its pods are gone.
    pub const SUCCESS_CRITERIA_MET: &str = "SuccessCriteriaMet";
}

/// Taint effects.
pub mod effect {
    /// New pods that do not tolerate the taint are not scheduled onto the node.
    pub const NO_SCHEDULE: &str = "NoSchedule";
    /// The scheduler avoids the node for pods that do not tolerate the taint.
    pub const PREFER_NO_SCHEDULE: &str = "PreferNoSchedule";
    /// Running pods that do not tolerate the taint are evicted.
    pub const NO_EXECUTE: &str = "NoExecute";
}

/// Taint keys the control plane puts on nodes.
pub mod taint {
    /// The node's agent says it is not ready.
    pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
    /// The node's agent stopped heartbeating.
    pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
    /// The node is cordoned.
    pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
    /// The node is short of memory.
    pub const MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
    /// The node is short of disk.
    pub const DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
    /// The node is short of process ids.
    pub const PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
    /// The node's network is not configured.
    pub const NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";
}

/// Finalizer names.
pub mod finalizer {
    /// Foreground deletion: the owner stays until its blocking dependents are gone.
    pub const FOREGROUND: &str = "foregroundDeletion";
    /// Orphan deletion: dependents lose their ownerReference, then the owner goes.
    pub const ORPHAN: &str = "orphan";
    /// A Job's pod stays until the Job controller has counted it.
    pub const JOB_TRACKING: &str = "batch.kubernetes.io/job-tracking";
}

/// Deletion propagation policies (`DeleteOptions.propagationPolicy`).
pub mod propagation {
    /// Delete the owner now; the garbage collector deletes its dependents afterwards.
    pub const BACKGROUND: &str = "Background";
    /// Delete the dependents first, then the owner.
    pub const FOREGROUND: &str = "Foreground";
    /// Delete the owner only; its dependents lose their ownerReference.
    pub const ORPHAN: &str = "Orphan";
}

/// Event types.
pub mod event_type {
    /// Something happened as expected.
    pub const NORMAL: &str = "Normal";
    /// Something went wrong or may need attention.
    pub const WARNING: &str = "Warning";
}

/// Container restart policies and image pull policies.
pub mod policy {
    /// restartPolicy: restart every container that ends.
    pub const ALWAYS: &str = "Always";
    /// restartPolicy: restart a container that fails.
    pub const ON_FAILURE: &str = "OnFailure";
    /// restartPolicy / imagePullPolicy: never.
    pub const NEVER: &str = "Never";
    /// imagePullPolicy: pull only when the image is missing.
    pub const IF_NOT_PRESENT: &str = "IfNotPresent";
}

/// Well-known node labels.
pub mod label {
    /// The node's name.
    pub const HOSTNAME: &str = "kubernetes.io/hostname";
    /// The node's operating system.
    pub const OS: &str = "kubernetes.io/os";
    /// The node's CPU architecture.
    pub const ARCH: &str = "kubernetes.io/arch";
}

/// Where the broker listens unless told otherwise.
pub const DEFAULT_BROKER_LISTEN: &str = "127.0.0.1:7440";
/// The broker's default address as clients dial it.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:7440";

/// Words of a Job's spec.
pub mod job {
    /// `completionMode`: each pod gets an index.
    pub const INDEXED: &str = "Indexed";
    /// `completionMode`: pods are interchangeable (the default).
    pub const NON_INDEXED: &str = "NonIndexed";
    /// `podReplacementPolicy`: replace a pod only once it has failed.
    pub const REPLACE_FAILED: &str = "Failed";
    /// `podReplacementPolicy`: replace a pod as soon as it is terminating.
    pub const REPLACE_TERMINATING_OR_FAILED: &str = "TerminatingOrFailed";
    /// bosun extension: the condition type of a Job waiting for the Jobs in `spec.dependsOn`.
    pub const WAITING: &str = "Waiting";

    /// `podFailurePolicy.rules[].action` and `onExitCodes.operator`.
    pub mod rule {
        /// Fail the whole Job.
        pub const FAIL_JOB: &str = "FailJob";
        /// Fail the pod's index (needs backoffLimitPerIndex).
        pub const FAIL_INDEX: &str = "FailIndex";
        /// Do not count the failure.
        pub const IGNORE: &str = "Ignore";
        /// Count the failure as usual.
        pub const COUNT: &str = "Count";
        /// The exit code is one of the values.
        pub const IN: &str = "In";
        /// The exit code is none of the values.
        pub const NOT_IN: &str = "NotIn";
    }
}

/// Words of a DaemonSet and its rollouts.
pub mod daemonset {
    /// `updateStrategy.type`: replace pods a few nodes at a time (the default).
    pub const ROLLING_UPDATE: &str = "RollingUpdate";
    /// `updateStrategy.type`: a new template is used only for pods created later.
    pub const ON_DELETE: &str = "OnDelete";
    /// The label on a daemon pod and a ControllerRevision naming the template's hash.
    pub const REVISION_HASH_LABEL: &str = "controller-revision-hash";
    /// bosun extension: on a DaemonSet, `"true"` pauses its rollout (`bosun rollout pause
    /// ds/NAME`); Kubernetes has `spec.paused` for Deployments only. An annotation, not a spec
    /// field, so Kubernetes clients that round-trip a DaemonSet keep it.
    pub const PAUSED_ANNOTATION: &str = "bosun.dev/rollout-paused";
    /// On a pod template: when `rollout restart` asked for new pods (kubectl's annotation).
    pub const RESTARTED_AT_ANNOTATION: &str = "kubectl.kubernetes.io/restartedAt";
    /// On a DaemonSet and copied to its ControllerRevision: why this revision was made.
    pub const CHANGE_CAUSE_ANNOTATION: &str = "kubernetes.io/change-cause";
}
