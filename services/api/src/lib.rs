//! bosun's API: the object types generated from `proto/bosun/v1`, helpers that treat every
//! kind alike ([`object`], [`kind`]), Kubernetes' defaults and validation rules, label and
//! field selectors, the strict YAML/JSON codec shared by the CLI and the broker, and the
//! shared Kubernetes vocabulary ([`vocab`]: phases, conditions, taints, finalizers).

pub mod codec;
pub mod condition;
pub mod cronjob;
pub mod daemonset;
pub mod defaults;
pub mod kind;
pub mod nodematch;
pub mod object;
pub mod schedule;
pub mod selector;
pub mod shard;
pub mod units;
pub mod validation;
pub mod vocab;

/// The generated protobuf types and gRPC stubs (`bosun.v1`).
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("bosun.v1");
}

pub use kind::KindInfo;
pub use v1::{Kind, Object, ObjectMeta};

/// The encoded `FileDescriptorSet` of every bosun proto file: the codec walks it to map
/// Kubernetes field names onto our messages.
pub const DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bosun_descriptor.bin"));

/// The descriptor pool built from [`DESCRIPTOR_SET`], decoded once.
pub fn descriptor_pool() -> &'static prost_reflect::DescriptorPool {
    static POOL: std::sync::OnceLock<prost_reflect::DescriptorPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        prost_reflect::DescriptorPool::decode(DESCRIPTOR_SET)
            .expect("the descriptor set compiled by build.rs decodes")
    })
}
