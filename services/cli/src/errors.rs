//! Turning broker answers into the messages kubectl users know, with what to do next.

use bosun_api::KindInfo;
use tonic::{Code, Status};

/// `jobs.batch`, `pods`: the resource as kubectl names it in server errors.
pub fn resource_plural(info: &KindInfo) -> String {
    if info.group.is_empty() {
        info.plural.to_string()
    } else {
        format!("{}.{}", info.plural, info.group)
    }
}

/// What to tell the user when the broker cannot be reached at `server`.
pub fn unreachable(server: &str) -> String {
    format!(
        "cannot reach the broker at {server}: is it running (`bosun up`)? set --server or BOSUN_SERVER"
    )
}

/// A broker error as kubectl would print it, for the object `name` of kind `info` (when the
/// call was about one object).
pub fn server_error(status: &Status, info: Option<&KindInfo>, name: &str, server: &str) -> String {
    let what = match info {
        Some(i) if !name.is_empty() => format!("{} \"{name}\"", resource_plural(i)),
        Some(i) => resource_plural(i),
        None => String::new(),
    };
    let msg = status.message();
    match status.code() {
        Code::NotFound if !what.is_empty() => {
            format!("Error from server (NotFound): {what} not found")
        }
        Code::NotFound => format!("Error from server (NotFound): {msg}"),
        Code::AlreadyExists if !what.is_empty() => {
            format!("Error from server (AlreadyExists): {what} already exists")
        }
        Code::AlreadyExists => format!("Error from server (AlreadyExists): {msg}"),
        Code::Aborted | Code::FailedPrecondition => {
            format!("Error from server (Conflict): Operation cannot be fulfilled on {what}: {msg}")
        }
        Code::InvalidArgument => {
            // The broker names the object itself (`job.batch "default/x" is invalid: ...`);
            // say it once, the kubectl way.
            let msg = strip_invalid_prefix(msg);
            // The broker lists one field error per line; kubectl indents them under the object.
            let mut lines = msg.lines();
            let first = lines.next().unwrap_or_default();
            let mut out = if what.is_empty() {
                format!("Error from server (Invalid): {first}")
            } else {
                format!("Error from server (Invalid): {what} is invalid: {first}")
            };
            for l in lines {
                out.push_str("\n  ");
                out.push_str(l.trim_start());
            }
            out
        }
        Code::OutOfRange => format!("Error from server (Expired): {msg}"),
        Code::ResourceExhausted => format!("Error from server (RequestEntityTooLarge): {msg}"),
        Code::Unavailable => format!("{}: {msg}", unreachable(server)),
        Code::DeadlineExceeded => format!("Error from server (Timeout): {msg}"),
        Code::PermissionDenied | Code::Unauthenticated => {
            format!("Error from server (Forbidden): {msg}")
        }
        _ => format!("Error from server (InternalError): {msg}"),
    }
}

/// `msg` without a leading `kind "name" is invalid: ` (the broker's own naming of the object).
fn strip_invalid_prefix(msg: &str) -> &str {
    match msg.split_once(" is invalid: ") {
        Some((head, rest))
            if head.split_once(' ').is_some_and(|(kind, name)| {
                !kind.is_empty() && name.len() >= 2 && name.starts_with('"') && name.ends_with('"')
            }) =>
        {
            rest
        }
        _ => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bosun_api::v1::Kind;

    const SERVER: &str = "http://127.0.0.1:7440";

    #[test]
    fn server_errors_read_like_kubectl() {
        let job = KindInfo::of(Kind::Job);
        let pod = KindInfo::of(Kind::Pod);
        let table = [
            (
                Status::not_found("whatever"),
                job,
                "x",
                "Error from server (NotFound): jobs.batch \"x\" not found",
            ),
            (
                Status::already_exists("exists"),
                pod,
                "p",
                "Error from server (AlreadyExists): pods \"p\" already exists",
            ),
            (
                Status::aborted("resourceVersion 5 is stale, current is 7"),
                job,
                "x",
                "Error from server (Conflict): Operation cannot be fulfilled on jobs.batch \"x\": resourceVersion 5 is stale, current is 7",
            ),
            (
                Status::invalid_argument(
                    "spec.template.spec.restartPolicy: Unsupported value: \"Always\"\nspec.completions: must be >= 0",
                ),
                job,
                "x",
                "Error from server (Invalid): jobs.batch \"x\" is invalid: spec.template.spec.restartPolicy: Unsupported value: \"Always\"\n  spec.completions: must be >= 0",
            ),
            (
                Status::invalid_argument(
                    "job.batch \"default/x\" is invalid: spec.parallelism: Invalid value: -1: must be greater than or equal to 0",
                ),
                job,
                "x",
                "Error from server (Invalid): jobs.batch \"x\" is invalid: spec.parallelism: Invalid value: -1: must be greater than or equal to 0",
            ),
            (
                Status::invalid_argument(
                    "json patch operation 0 (remove /a) failed: path is invalid",
                ),
                job,
                "x",
                "Error from server (Invalid): jobs.batch \"x\" is invalid: json patch operation 0 (remove /a) failed: path is invalid",
            ),
        ];
        for (status, info, name, want) in table {
            assert_eq!(server_error(&status, info, name, SERVER), want);
        }
        let unavailable = server_error(&Status::unavailable("tcp connect error"), job, "x", SERVER);
        assert!(unavailable.starts_with("cannot reach the broker at http://127.0.0.1:7440"));
        assert!(unavailable.contains("BOSUN_SERVER"));
    }
}
