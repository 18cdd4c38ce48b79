//! Image pulls decided as the kubelet's image manager decides them, as pure functions (the
//! docker runtime only acts on them): whether to pull per `imagePullPolicy` and whether the
//! image is present, the back-off between failed pulls, and the waiting reason a container
//! shows meanwhile.
//!
//! The sequence a missing image goes through: a pull fails → `ErrImagePull` with the
//! engine's message; the next try while the back-off runs → `ImagePullBackOff`
//! (`Back-off pulling image "x": ErrImagePull: <engine's message>`); once the back-off ends
//! the image is pulled again, and each failure doubles the back-off up to its cap. With
//! `Never`, a missing image is `ErrImageNeverPull` and nothing is pulled.

use std::time::{Duration, Instant};

use bosun_api::v1;
use bosun_api::vocab::policy;

/// The waiting reason of a container whose image pull failed.
pub const ERR_IMAGE_PULL: &str = "ErrImagePull";
/// The waiting reason of a container whose image pull is backing off after a failure.
pub const IMAGE_PULL_BACK_OFF: &str = "ImagePullBackOff";
/// The waiting reason of a container whose image is missing with `imagePullPolicy: Never`.
pub const ERR_IMAGE_NEVER_PULL: &str = "ErrImageNeverPull";

/// How soon after a failed pull the container is looked at again (the kubelet's pod
/// resync): it then shows `ImagePullBackOff` for the rest of the back-off. At most half
/// the back-off, so the look always falls inside it.
pub const PULL_RESYNC: Duration = Duration::from_secs(1);

/// A container's `imagePullPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull before every start.
    Always,
    /// Pull only when the image is missing.
    IfNotPresent,
    /// Never pull: a missing image is an error.
    Never,
}

impl PullPolicy {
    /// The policy a container names; empty (a pod that skipped the API's defaulting) takes
    /// the API's default for `image` (Always for `:latest` or no tag, else IfNotPresent).
    pub fn of(named: &str, image: &str) -> PullPolicy {
        let defaulted;
        let named = if named.is_empty() {
            let mut spec = v1::PodSpec {
                containers: vec![v1::Container {
                    image: image.to_string(),
                    ..Default::default()
                }],
                ..Default::default()
            };
            bosun_api::defaults::default_pod_spec(&mut spec);
            defaulted = spec.containers.swap_remove(0).image_pull_policy;
            defaulted.as_str()
        } else {
            named
        };
        match named {
            policy::NEVER => PullPolicy::Never,
            policy::IF_NOT_PRESENT => PullPolicy::IfNotPresent,
            // Always, and anything validation would have refused.
            _ => PullPolicy::Always,
        }
    }
}

/// The last failed pull of one image for one pod: when the next may be tried, and why it
/// failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullBackoff {
    /// The back-off this failure started (doubles with each failure, up to the cap).
    pub delay: Duration,
    /// No pull before this.
    pub next_try: Instant,
    /// The engine's message.
    pub error: String,
}

/// Why a container does not start yet, and when to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// `ErrImagePull`, `ImagePullBackOff` or `ErrImageNeverPull`.
    pub reason: &'static str,
    pub message: String,
    pub retry_in: Duration,
}

/// What to do about a container's image before creating the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullStep {
    /// Use the image already present.
    UseLocal,
    /// Pull it now.
    Pull,
    /// Do not start: wait with this reason.
    Wait(Waiting),
}

/// The message of `ErrImageNeverPull` (the kubelet's words).
pub fn never_pull_message(image: &str) -> String {
    format!("Container image {image:?} is not present with pull policy of Never")
}

/// Decides the image step for `image` under `policy`, given whether it is `present` and the
/// back-off of its last failed pull, if any. A `Never` image that is missing is looked at
/// again after `recheck`.
pub fn pull_step(
    image: &str,
    policy: PullPolicy,
    present: bool,
    backoff: Option<&PullBackoff>,
    now: Instant,
    recheck: Duration,
) -> PullStep {
    let must_pull = match policy {
        PullPolicy::Always => true,
        PullPolicy::IfNotPresent => !present,
        PullPolicy::Never if present => false,
        PullPolicy::Never => {
            return PullStep::Wait(Waiting {
                reason: ERR_IMAGE_NEVER_PULL,
                message: never_pull_message(image),
                retry_in: recheck,
            });
        }
    };
    if !must_pull {
        return PullStep::UseLocal;
    }
    match backoff {
        Some(b) if now < b.next_try => PullStep::Wait(Waiting {
            reason: IMAGE_PULL_BACK_OFF,
            message: format!(
                "Back-off pulling image {image:?}: {ERR_IMAGE_PULL}: {}",
                b.error
            ),
            retry_in: b.next_try - now,
        }),
        _ => PullStep::Pull,
    }
}

/// After a failed pull (`error`, the engine's message): the new back-off (`base` after the
/// first failure, doubling after each further one, at most `cap`) and the `ErrImagePull`
/// wait, looked at again within the back-off so `ImagePullBackOff` follows.
pub fn pull_failed(
    prev: Option<&PullBackoff>,
    error: String,
    now: Instant,
    base: Duration,
    cap: Duration,
) -> (PullBackoff, Waiting) {
    let delay = match prev {
        Some(p) => p.delay.saturating_mul(2).min(cap),
        None => base.min(cap),
    };
    let waiting = Waiting {
        reason: ERR_IMAGE_PULL,
        message: error.clone(),
        retry_in: (delay / 2).min(PULL_RESYNC),
    };
    let backoff = PullBackoff {
        delay,
        next_try: now + delay,
        error,
    };
    (backoff, waiting)
}

/// The `fromImage` and `tag` of a pull of `image`: a reference without a tag or digest
/// pulls `latest` (an empty tag would pull every tag of the repository).
pub fn pull_reference(image: &str) -> (String, String) {
    if image.contains('@') {
        // A digest names one image: it goes whole, with no tag.
        return (image.to_string(), String::new());
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) => {
            let repo = &image[..image.len() - tag.len() - 1];
            (repo.to_string(), tag.to_string())
        }
        None => (image.to_string(), "latest".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn the_policy_is_the_named_one_or_the_apis_default_for_the_tag() {
        for (row, named, image, want) in [
            ("never", "Never", "x:1", PullPolicy::Never),
            (
                "if not present",
                "IfNotPresent",
                "x",
                PullPolicy::IfNotPresent,
            ),
            ("always", "Always", "x:1", PullPolicy::Always),
            ("default, no tag", "", "busybox", PullPolicy::Always),
            (
                "default, latest",
                "",
                "reg:5000/busybox:latest",
                PullPolicy::Always,
            ),
            (
                "default, a tag",
                "",
                "reg:5000/busybox:1.36",
                PullPolicy::IfNotPresent,
            ),
            (
                "default, a digest",
                "",
                "busybox@sha256:ab",
                PullPolicy::IfNotPresent,
            ),
        ] {
            assert_eq!(PullPolicy::of(named, image), want, "{row}");
        }
    }

    #[test]
    fn whether_to_pull_follows_the_policy_the_presence_and_the_back_off() {
        let now = Instant::now();
        let running = PullBackoff {
            delay: 10 * S,
            next_try: now + 4 * S,
            error: "no such host".into(),
        };
        let over = PullBackoff {
            next_try: now,
            ..running.clone()
        };
        use PullPolicy::*;
        /// What the step should be: pull, use the local image, or wait with a reason.
        #[derive(Debug)]
        enum Want {
            Pull,
            Local,
            Wait(&'static str),
        }
        use Want::{Local, Pull, Wait};
        let none = None;
        let (running, over) = (Some(&running), Some(&over));
        let cases = [
            // (row, policy, present, back-off, want)
            ("always pulls a present image", Always, true, none, Pull),
            ("always pulls a missing image", Always, false, none, Pull),
            (
                "if-not-present uses a present image",
                IfNotPresent,
                true,
                none,
                Local,
            ),
            (
                "if-not-present pulls a missing image",
                IfNotPresent,
                false,
                none,
                Pull,
            ),
            ("never uses a present image", Never, true, none, Local),
            (
                "never refuses a missing image",
                Never,
                false,
                none,
                Wait(ERR_IMAGE_NEVER_PULL),
            ),
            ("never ignores a back-off", Never, true, running, Local),
            (
                "a present image needs no pull",
                IfNotPresent,
                true,
                running,
                Local,
            ),
            (
                "a pull waits out the back-off",
                IfNotPresent,
                false,
                running,
                Wait(IMAGE_PULL_BACK_OFF),
            ),
            (
                "always waits out the back-off",
                Always,
                true,
                running,
                Wait(IMAGE_PULL_BACK_OFF),
            ),
            (
                "a pull follows an ended back-off",
                Always,
                false,
                over,
                Pull,
            ),
        ];
        for (row, policy, present, backoff, want) in cases {
            let got = pull_step("x:1", policy, present, backoff, now, 3 * S);
            match (&want, &got) {
                (Pull, PullStep::Pull) | (Local, PullStep::UseLocal) => {}
                (Wait(reason), PullStep::Wait(w)) if w.reason == *reason => {}
                _ => panic!("{row}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn the_waits_carry_the_kubelets_messages_and_retry_times() {
        let now = Instant::now();
        let b = PullBackoff {
            delay: 10 * S,
            next_try: now + 4 * S,
            error: "Get \"https://r/v2/\": no such host".into(),
        };
        let PullStep::Wait(w) = pull_step("r/x:1", PullPolicy::Always, false, Some(&b), now, S)
        else {
            panic!("a wait");
        };
        assert_eq!(
            w.message,
            "Back-off pulling image \"r/x:1\": ErrImagePull: Get \"https://r/v2/\": no such host"
        );
        assert_eq!(w.retry_in, 4 * S, "retried when the back-off ends");
        let PullStep::Wait(w) = pull_step("r/x:1", PullPolicy::Never, false, None, now, 3 * S)
        else {
            panic!("a wait");
        };
        assert_eq!(
            w.message,
            "Container image \"r/x:1\" is not present with pull policy of Never"
        );
        assert_eq!(w.retry_in, 3 * S);
    }

    #[test]
    fn failed_pulls_double_the_back_off_up_to_the_cap_and_show_err_image_pull_first() {
        let now = Instant::now();
        let ms = Duration::from_millis;
        let (base, cap) = (10 * S, 40 * S);
        let prev = |delay| PullBackoff {
            delay,
            next_try: now,
            error: "old".into(),
        };
        for (row, prev, want_delay, want_retry) in [
            ("first failure", None, 10 * S, S),
            ("second", Some(prev(10 * S)), 20 * S, S),
            ("capped", Some(prev(40 * S)), 40 * S, S),
        ] {
            let (b, w) = pull_failed(prev.as_ref(), "engine says no".into(), now, base, cap);
            assert_eq!(b.delay, want_delay, "{row}");
            assert_eq!(b.next_try, now + want_delay, "{row}");
            assert_eq!(b.error, "engine says no", "{row}");
            assert_eq!(w.reason, ERR_IMAGE_PULL, "{row}");
            assert_eq!(w.message, "engine says no", "{row}");
            assert_eq!(w.retry_in, want_retry, "{row}");
        }
        // A short back-off (tests) is looked at again halfway, inside the back-off.
        let (b, w) = pull_failed(None, "e".into(), now, ms(200), cap);
        assert_eq!((b.delay, w.retry_in), (ms(200), ms(100)));
        // The look-again falls inside the back-off: ImagePullBackOff follows ErrImagePull.
        let after = pull_step(
            "x",
            PullPolicy::Always,
            false,
            Some(&b),
            now + w.retry_in,
            S,
        );
        assert!(
            matches!(&after, PullStep::Wait(w) if w.reason == IMAGE_PULL_BACK_OFF),
            "{after:?}"
        );
        // And once the back-off ends, the image is pulled again.
        let later = pull_step("x", PullPolicy::Always, false, Some(&b), now + b.delay, S);
        assert_eq!(later, PullStep::Pull);
    }

    #[test]
    fn a_pull_names_a_tag_or_a_digest() {
        for (image, repo, tag) in [
            ("busybox", "busybox", "latest"),
            ("busybox:1.36", "busybox", "1.36"),
            ("reg:5000/team/app", "reg:5000/team/app", "latest"),
            ("reg:5000/team/app:v2", "reg:5000/team/app", "v2"),
            ("app@sha256:abc", "app@sha256:abc", ""),
        ] {
            assert_eq!(
                pull_reference(image),
                (repo.to_string(), tag.to_string()),
                "{image}"
            );
        }
    }
}
