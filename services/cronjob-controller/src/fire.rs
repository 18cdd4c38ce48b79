//! The CronJob's schedule, parsed in its time zone by bosun's one schedule reader
//! (`bosun_api::schedule`, the same code that validates it at apply), with Kubernetes' event
//! reasons when it cannot be used.

use bosun_api::schedule::{Schedule, ScheduleError};
use bosun_api::v1;

use crate::plan::Unschedulable;

/// Parses `spec.schedule` in `spec.timeZone` (unset: UTC).
pub fn parse(spec: &v1::CronJobSpec) -> Result<Schedule, Unschedulable> {
    Schedule::parse(&spec.schedule, spec.time_zone.as_deref()).map_err(|e| match e {
        ScheduleError::UnknownTimeZone(_)
        | ScheduleError::EmptyTimeZone
        | ScheduleError::LocalTimeZone => Unschedulable {
            reason: "UnknownTimeZone",
            message: format!(
                "invalid timeZone: {:?}: {e}",
                spec.time_zone.as_deref().unwrap_or_default()
            ),
        },
        other => Unschedulable {
            reason: "UnparseableSchedule",
            message: format!("unparseable schedule: {:?} : {other}", spec.schedule),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_schedules_and_zones_get_kubernetes_reasons() {
        let table = [
            ("a good one", "*/5 * * * *", None, None),
            ("in a zone", "0 9 * * 1-5", Some("Europe/London"), None),
            (
                "six fields",
                "* * * * * *",
                None,
                Some("UnparseableSchedule"),
            ),
            (
                "a zone prefix",
                "TZ=UTC * * * * *",
                None,
                Some("UnparseableSchedule"),
            ),
            (
                "no such zone",
                "* * * * *",
                Some("Mars/Olympus"),
                Some("UnknownTimeZone"),
            ),
            ("Local", "* * * * *", Some("Local"), Some("UnknownTimeZone")),
        ];
        for (name, schedule, zone, want) in table {
            let spec = v1::CronJobSpec {
                schedule: schedule.into(),
                time_zone: zone.map(str::to_string),
                ..Default::default()
            };
            assert_eq!(parse(&spec).err().map(|u| u.reason), want, "{name}");
        }
    }
}
