//! Scale-out: a replica's membership among the replicas of its controller kind, and the
//! shards it holds (`proto/bosun/v1/shards.proto`, `bosun_api::shard`).
//!
//! [`Held`] is the contract between the membership (which joins, keeps its lease alive,
//! follows the other members and takes or releases shards) and the controller runtime
//! (which filters its informers by the held shards, reconciles only their keys, and stamps
//! each write with the fence of the shard it is made for).

use std::collections::BTreeMap;

use bosun_api::shard::{Controller, Fence};

/// The shards a replica holds now, each with its fencing token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub controller: Controller,
    /// The kind's shard count (`bosun_api::shard::SHARDS`).
    pub count: u32,
    /// shard → token (the create revision of its owner key).
    pub tokens: BTreeMap<u32, i64>,
}

impl Held {
    /// Nothing held (before the first acquire, after the lease was lost).
    pub fn none(controller: Controller, count: u32) -> Held {
        Held {
            controller,
            count,
            tokens: BTreeMap::new(),
        }
    }

    /// The fence for writes made for `shard`, if held.
    pub fn fence(&self, shard: u32) -> Option<Fence> {
        self.tokens.get(&shard).map(|&token| Fence {
            controller: self.controller,
            shard,
            token,
        })
    }

    /// Whether every shard is held (a lone replica): filters can be skipped.
    pub fn all(&self) -> bool {
        self.tokens.len() == self.count as usize
    }
}
