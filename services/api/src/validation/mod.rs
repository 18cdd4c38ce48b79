//! Kubernetes' validation rules for every kind, as pure functions over objects.
//!
//! Messages follow Kubernetes' `field.Error` wording (`Required value`, `Invalid value: ...`,
//! `Unsupported value: ...: supported values: ...`) so that users can search for them.
//! [`meta`] holds names, labels and metadata; [`pod`] the pod spec; [`workloads`] Job, CronJob
//! and DaemonSet; [`update`] the immutability rules.

mod meta;
mod pod;
mod update;
mod workloads;

use crate::v1::{Object, object::Object as O};

pub use crate::units::parse_quantity;
pub use meta::{is_dns1123_label, is_dns1123_subdomain, is_qualified_name, is_valid_label_value};

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// `spec.template.spec.restartPolicy`
    pub path: String,
    /// `Unsupported value: "Always": supported values: "OnFailure", "Never"`
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The errors found so far, with Kubernetes' message shapes.
#[derive(Debug, Default)]
pub(crate) struct Errs(pub Vec<FieldError>);

impl Errs {
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }
    pub fn required(&mut self, path: impl Into<String>, detail: &str) {
        let message = if detail.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {detail}")
        };
        self.push(path, message);
    }
    pub fn invalid(&mut self, path: impl Into<String>, value: impl std::fmt::Debug, detail: &str) {
        self.push(path, format!("Invalid value: {value:?}: {detail}"));
    }
    pub fn unsupported(&mut self, path: impl Into<String>, value: &str, supported: &[&str]) {
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        self.push(
            path,
            format!(
                "Unsupported value: {value:?}: supported values: {}",
                list.join(", ")
            ),
        );
    }
    pub fn forbidden(&mut self, path: impl Into<String>, detail: &str) {
        self.push(path, format!("Forbidden: {detail}"));
    }
    pub fn duplicate(&mut self, path: impl Into<String>, value: impl std::fmt::Debug) {
        self.push(path, format!("Duplicate value: {value:?}"));
    }
    pub fn non_negative(&mut self, path: &str, value: Option<i64>) {
        if let Some(v) = value.filter(|v| *v < 0) {
            self.invalid(path, v, "must be greater than or equal to 0");
        }
    }
    pub fn one_of(&mut self, path: &str, value: &str, supported: &[&str]) {
        if !supported.contains(&value) {
            self.unsupported(path, value, supported);
        }
    }
    fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}

/// Validates an object about to be created (after defaulting).
pub fn validate_create(obj: &Object) -> Result<(), Vec<FieldError>> {
    let mut e = Errs::default();
    let Some(info) = obj.info() else {
        e.required("kind", "");
        return e.finish();
    };
    let default_meta = Default::default();
    let m = obj.meta().unwrap_or(&default_meta);
    meta::validate_object_meta(&mut e, m, info.namespaced);
    match &obj.object {
        Some(O::Pod(p)) => match &p.spec {
            Some(spec) => pod::validate_pod_spec(&mut e, spec, "spec"),
            None => e.required("spec.containers", ""),
        },
        Some(O::Job(j)) => {
            if m.name.len() > 63 {
                e.invalid(
                    "metadata.name",
                    &m.name,
                    "must be no more than 63 characters",
                );
            }
            match &j.spec {
                Some(spec) => workloads::validate_job_spec(&mut e, spec, m, "spec", false),
                None => e.required("spec.template", ""),
            }
        }
        Some(O::CronJob(c)) => {
            if m.name.len() > 52 {
                e.invalid(
                    "metadata.name",
                    &m.name,
                    "must be no more than 52 characters",
                );
            }
            match &c.spec {
                Some(spec) => workloads::validate_cron_job_spec(&mut e, spec),
                None => e.required("spec.schedule", ""),
            }
        }
        Some(O::DaemonSet(d)) => match &d.spec {
            Some(spec) => workloads::validate_daemon_set_spec(&mut e, spec),
            None => e.required("spec.selector", ""),
        },
        Some(O::Node(n)) => {
            if let Some(spec) = &n.spec {
                for (i, t) in spec.taints.iter().enumerate() {
                    let p = format!("spec.taints[{i}]");
                    meta::validate_label_key(&mut e, &format!("{p}.key"), &t.key);
                    e.one_of(&format!("{p}.effect"), &t.effect, pod::TAINT_EFFECTS);
                }
            }
        }
        Some(O::ControllerRevision(r)) => {
            e.non_negative("revision", Some(r.revision));
            if let Some(spec) = r
                .data
                .as_ref()
                .and_then(|d| d.template.as_ref())
                .and_then(|t| t.spec.as_ref())
            {
                pod::validate_pod_spec(&mut e, spec, "data.template.spec");
            }
        }
        Some(O::Event(ev)) => {
            if ev.involved_object.is_none() {
                e.required("involvedObject", "");
            }
            if !ev.r#type.is_empty() {
                e.one_of("type", &ev.r#type, &["Normal", "Warning"]);
            }
        }
        Some(O::Lease(l)) => {
            if let Some(d) = l.spec.as_ref().and_then(|s| s.lease_duration_seconds)
                && d <= 0
            {
                e.invalid("spec.leaseDurationSeconds", d, "must be greater than 0");
            }
        }
        None => {}
    }
    e.finish()
}

/// Validates an update of `old` into `new` (immutable fields, then the create rules).
pub fn validate_update(old: &Object, new: &Object) -> Result<(), Vec<FieldError>> {
    let mut e = Errs::default();
    update::validate_update(&mut e, old, new);
    if let Err(more) = validate_create(new) {
        e.0.extend(more);
    }
    e.finish()
}
