//! The broker's errors and how each reaches a client as a gRPC status.

use bosun_api::selector::SelectorError;
use bosun_api::validation::FieldError;

/// Everything that can go wrong serving a request or running the broker.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request itself is malformed (no object, no kind, no name...).
    #[error("{0}")]
    BadRequest(String),
    /// Validation rejected the object.
    #[error("{resource} {name:?} is invalid: {}", join(.errors))]
    Invalid {
        resource: String,
        name: String,
        errors: Vec<FieldError>,
    },
    /// A patch could not be applied (malformed, a failed `test`, renames the object).
    #[error(transparent)]
    Patch(#[from] crate::patch::PatchError),
    /// A label or field selector did not parse.
    #[error(transparent)]
    Selector(#[from] SelectorError),
    /// The encoded object is over `--max-object-bytes`.
    #[error("{resource} {name:?} is too large: {size} bytes encoded, the limit is {limit}")]
    TooLarge {
        resource: String,
        name: String,
        size: usize,
        limit: usize,
    },
    #[error("{resource} {name:?} not found")]
    NotFound { resource: String, name: String },
    #[error("{resource} {name:?} already exists")]
    AlreadyExists { resource: String, name: String },
    /// Optimistic concurrency: the object changed since the client read it.
    #[error(
        "{resource} {name:?}: the object has been modified: you sent resourceVersion {sent}, it is now {current}; get it again and retry"
    )]
    Conflict {
        resource: String,
        name: String,
        sent: i64,
        current: i64,
    },
    /// A delete precondition (uid, resourceVersion) does not hold.
    #[error("precondition failed for {resource} {name:?}: {reason}")]
    Precondition {
        resource: String,
        name: String,
        reason: String,
    },
    /// A watch asked for a revision the broker no longer has.
    #[error(
        "expired: revision {requested} is older than the oldest the broker can replay ({oldest}); list again and watch from the list's revision"
    )]
    Expired { requested: i64, oldest: i64 },
    /// A subscriber fell too far behind and was cut off.
    #[error("too slow: resume from revision {resume_from}")]
    TooSlow { resume_from: i64 },
    /// The broker is stopping; the client should reconnect (to this or another broker).
    #[error("the broker is shutting down: resume from revision {resume_from}")]
    ShuttingDown { resume_from: i64 },
    /// etcd could not be reached or refused the request.
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    /// A stored value did not decode.
    #[error("stored value at {key} does not decode: {source}")]
    Decode {
        key: String,
        source: prost::DecodeError,
    },
    /// A write kept conflicting with concurrent writers.
    #[error("{resource} {name:?} kept changing under concurrent writes; retry")]
    Contended { resource: String, name: String },
    /// A write made for a shard its replica no longer holds (the `bosun-fence` token is not
    /// the owner key's create revision): refused, not applied.
    #[error(
        "fenced: shard {shard} of the {controller} controller is no longer held by this replica (token {token}, now {})",
        now.map_or_else(|| "free".to_string(), |n| n.to_string())
    )]
    Fenced {
        controller: bosun_api::shard::Controller,
        shard: u32,
        token: i64,
        /// The owner key's create revision now; `None`: no one holds the shard.
        now: Option<i64>,
    },
    /// A scale-out lease that expired or was revoked (its member key and shards are gone).
    #[error(
        "lease {lease:x} has expired or was revoked: its member key and shards are gone; join again"
    )]
    LeaseGone { lease: i64 },
    /// The API port could not be bound.
    #[error(
        "cannot listen on {addr}: {source}; is another broker running there? choose another --listen"
    )]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Serve(#[from] tonic::transport::Error),
}

fn join(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<Error> for tonic::Status {
    fn from(err: Error) -> tonic::Status {
        use tonic::Code;
        let code = match &err {
            Error::BadRequest(_)
            | Error::Invalid { .. }
            | Error::Selector(_)
            | Error::Patch(_)
            | Error::TooLarge { .. } => Code::InvalidArgument,
            Error::NotFound { .. } | Error::LeaseGone { .. } => Code::NotFound,
            Error::AlreadyExists { .. } => Code::AlreadyExists,
            Error::Conflict { .. } | Error::Contended { .. } => Code::Aborted,
            Error::Precondition { .. } | Error::Fenced { .. } => Code::FailedPrecondition,
            Error::Expired { .. } => Code::OutOfRange,
            Error::TooSlow { .. } => Code::ResourceExhausted,
            Error::ShuttingDown { .. } | Error::Etcd(_) | Error::Listen { .. } => Code::Unavailable,
            Error::Decode { .. } | Error::Serve(_) => Code::Internal,
        };
        tonic::Status::new(code, err.to_string())
    }
}

/// A result with the broker's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
