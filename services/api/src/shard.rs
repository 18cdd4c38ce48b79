//! Which virtual shard of a controller kind an object belongs to (scale-out: several active
//! replicas of one controller split its shards; see `proto/bosun/v1/shards.proto`).
//!
//! An object's shard is the stable hash of its **root owner's uid within the controller
//! kind**: the kind a controller manages hashes its own uid (a Job for the Job controller); a
//! dependent hashes its controller ownerReference's uid, so a Job's pods follow the Job and a
//! CronJob's Jobs follow the CronJob. The same Job is thus in one shard for the Job
//! controller (its own uid) and maybe another for the CronJob controller (its CronJob's
//! uid): a shard is always read with its controller kind.
//!
//! A dependent without a controller ownerReference is **unsharded** (`None`): every replica
//! sees it, so whichever replica's Job selects an orphan can adopt it (under the fence of
//! that Job's shard). Objects of kinds a controller neither manages nor owns are unsharded too
//! (nodes, for the DaemonSet controller).
//!
//! The hash is 64-bit FNV-1a over the uid's bytes, modulo the shard count: stable across
//! builds, platforms and languages, so a replica, the broker and a test agree.

use crate::v1::{Kind, Object};

/// Virtual shards per controller kind.
pub const SHARDS: u32 = 256;

/// A controller kind that can run as several replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Controller {
    Job,
    CronJob,
    DaemonSet,
}

impl Controller {
    pub const ALL: [Controller; 3] = [Controller::Job, Controller::CronJob, Controller::DaemonSet];

    /// Its name in flags, etcd keys, fence headers and `bosun get controllers`.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Job => "job",
            Controller::CronJob => "cronjob",
            Controller::DaemonSet => "daemonset",
        }
    }

    /// The kind it manages (the root of its shards).
    pub fn primary(self) -> Kind {
        match self {
            Controller::Job => Kind::Job,
            Controller::CronJob => Kind::CronJob,
            Controller::DaemonSet => Kind::DaemonSet,
        }
    }

    /// Parses [`Controller::name`].
    pub fn parse(name: &str) -> Option<Controller> {
        Controller::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl std::fmt::Display for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The shard of a root owner's uid, in `0..count` (`count` 0 is taken as 1).
pub fn of_uid(uid: &str, count: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in uid.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % u64::from(count.max(1))) as u32
}

/// The uid whose hash places `obj` for `controller`: its own for the controller's kind, its
/// controller ownerReference's for anything else; `None` when it has none (unsharded).
pub fn root_uid(controller: Controller, obj: &Object) -> Option<&str> {
    if obj.kind() == controller.primary() {
        return Some(obj.uid()).filter(|u| !u.is_empty());
    }
    obj.controller_ref()
        .map(|r| r.uid.as_str())
        .filter(|u| !u.is_empty())
}

/// `obj`'s shard for `controller` out of `count`; `None` when unsharded (seen by every
/// replica).
pub fn of_object(controller: Controller, obj: &Object, count: u32) -> Option<u32> {
    root_uid(controller, obj).map(|uid| of_uid(uid, count))
}

/// The value of the `bosun-fence` gRPC metadata a sharded write carries:
/// `<controller>/<shard>/<token>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence {
    pub controller: Controller,
    pub shard: u32,
    /// The create revision of the shard's owner key when this replica took it.
    pub token: i64,
}

/// The gRPC metadata key of [`Fence`].
pub const FENCE_HEADER: &str = "bosun-fence";

impl std::fmt::Display for Fence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.controller, self.shard, self.token)
    }
}

impl std::str::FromStr for Fence {
    type Err = String;

    fn from_str(s: &str) -> Result<Fence, String> {
        let bad =
            || format!("{FENCE_HEADER} {s:?}: want <controller>/<shard>/<token>, e.g. job/17/4242");
        let mut parts = s.split('/');
        let (Some(c), Some(shard), Some(token), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let controller = Controller::parse(c).ok_or_else(bad)?;
        let shard = shard.parse().map_err(|_| bad())?;
        let token = token.parse().map_err(|_| bad())?;
        if token <= 0 {
            return Err(bad());
        }
        Ok(Fence {
            controller,
            shard,
            token,
        })
    }
}

/// The etcd key through which a replica holds `shard` of `controller`.
pub fn owner_key(controller: Controller, shard: u32) -> String {
    format!("/bosun/shards/{controller}/owners/{shard:05}")
}

/// The etcd key of a replica's membership.
pub fn member_key(controller: Controller, replica: &str) -> String {
    format!("/bosun/shards/{controller}/members/{replica}")
}

/// Rendezvous (highest random weight) hashing: the member that should own `shard`, among
/// `members` (replica names); `None` when there is none. Adding a member moves only the
/// shards it wins; removing one moves only its own.
pub fn rendezvous<'a>(shard: u32, members: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    members.into_iter().max_by_key(|m| (weight(shard, m), *m))
}

fn weight(shard: u32, member: &str) -> u64 {
    // FNV-1a over the member's name and the shard, then a 64-bit finalizer (splitmix64) so
    // that names differing in one byte get unrelated weights.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in member.bytes().chain(shard.to_le_bytes()) {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

/// The shards of `0..count` that `me` should own among `members` (which should include `me`).
pub fn assigned(me: &str, members: &[&str], count: u32) -> Vec<u32> {
    (0..count)
        .filter(|s| rendezvous(*s, members.iter().copied()) == Some(me))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{self, object::Object as O};

    fn meta(uid: &str, owner: Option<(&str, &str)>) -> v1::ObjectMeta {
        v1::ObjectMeta {
            name: "x".into(),
            namespace: "default".into(),
            uid: uid.into(),
            owner_references: owner
                .map(|(kind, uid)| v1::OwnerReference {
                    kind: kind.into(),
                    uid: uid.into(),
                    controller: Some(true),
                    ..Default::default()
                })
                .into_iter()
                .collect(),
            ..Default::default()
        }
    }

    fn job(uid: &str, owner: Option<(&str, &str)>) -> Object {
        Object {
            object: Some(O::Job(Box::new(v1::Job {
                metadata: Some(meta(uid, owner)),
                ..Default::default()
            }))),
        }
    }

    fn pod(uid: &str, owner: Option<(&str, &str)>) -> Object {
        Object {
            object: Some(O::Pod(Box::new(v1::Pod {
                metadata: Some(meta(uid, owner)),
                ..Default::default()
            }))),
        }
    }

    #[test]
    fn the_root_uid_depends_on_the_controller_kind() {
        let cases: &[(&str, Controller, Object, Option<&str>)] = &[
            (
                "a Job is its own root for the Job controller",
                Controller::Job,
                job("j", Some(("CronJob", "c"))),
                Some("j"),
            ),
            (
                "a CronJob's Job follows the CronJob",
                Controller::CronJob,
                job("j", Some(("CronJob", "c"))),
                Some("c"),
            ),
            (
                "a plain Job is unsharded for the CronJob controller",
                Controller::CronJob,
                job("j", None),
                None,
            ),
            (
                "a Job's pod follows the Job",
                Controller::Job,
                pod("p", Some(("Job", "j"))),
                Some("j"),
            ),
            (
                "an orphan pod is unsharded",
                Controller::Job,
                pod("p", None),
                None,
            ),
            (
                "a DaemonSet's pod follows the DaemonSet",
                Controller::DaemonSet,
                pod("p", Some(("DaemonSet", "d"))),
                Some("d"),
            ),
            (
                "an object without a uid yet is unsharded",
                Controller::Job,
                job("", None),
                None,
            ),
        ];
        for (what, controller, obj, want) in cases {
            assert_eq!(root_uid(*controller, obj), *want, "{what}");
        }
    }

    #[test]
    fn shards_are_stable_and_in_range() {
        // Fixed values: a change of hash would move every object to another replica's cache
        // in a rolling upgrade of mixed versions.
        assert_eq!(of_uid("", 256), (0xcbf2_9ce4_8422_2325u64 % 256) as u32);
        assert_eq!(of_uid("a", 256), (0xaf63_dc4c_8601_ec8cu64 % 256) as u32);
        for i in 0..1000 {
            assert!(of_uid(&format!("uid-{i}"), 7) < 7);
        }
        assert_eq!(of_uid("x", 0), 0);
    }

    #[test]
    fn the_fence_header_round_trips_and_refuses_garbage() {
        let f = Fence {
            controller: Controller::CronJob,
            shard: 17,
            token: 4242,
        };
        assert_eq!(f.to_string(), "cronjob/17/4242");
        assert_eq!("cronjob/17/4242".parse::<Fence>(), Ok(f));
        for bad in [
            "",
            "job",
            "job/1",
            "job/1/2/3",
            "pod/1/2",
            "job/x/2",
            "job/1/0",
            "job/1/-3",
        ] {
            assert!(bad.parse::<Fence>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn rendezvous_spreads_shards_and_moves_only_a_members_share() {
        let three = ["a", "b", "c"];
        let counts: Vec<usize> = three
            .iter()
            .map(|m| assigned(m, &three, SHARDS).len())
            .collect();
        assert_eq!(counts.iter().sum::<usize>(), SHARDS as usize);
        for c in &counts {
            assert!((60..=110).contains(c), "uneven split {counts:?}");
        }
        // Adding d moves shards only to d; removing c moves only c's shards.
        let four = ["a", "b", "c", "d"];
        for s in 0..SHARDS {
            let before = rendezvous(s, three).unwrap();
            let after = rendezvous(s, four).unwrap();
            assert!(
                after == before || after == "d",
                "shard {s}: {before} → {after}"
            );
            let without_c = rendezvous(s, ["a", "b"]).unwrap();
            if before != "c" {
                assert_eq!(without_c, before, "shard {s} moved though its owner stayed");
            }
        }
        assert_eq!(rendezvous(3, std::iter::empty()), None);
    }
}
