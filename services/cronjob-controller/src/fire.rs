//! The CronJob's schedule, parsed in its time zone, as the plan's [`FireTimes`].
//!
//! INTERIM: a minimal five-field reader in UTC until `bosun_api::schedule::Schedule` (the
//! `sched` branch) is merged; then this file only adapts that API.

use bosun_api::v1;
use chrono::{DateTime, Datelike, Duration, Timelike, Utc};

use crate::plan::{FireTimes, Unschedulable};

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Parsed {
    fields: [Vec<bool>; 5],
}

/// Parses `spec.schedule` in `spec.timeZone`; the reason is Kubernetes' event reason.
pub fn parse(spec: &v1::CronJobSpec) -> Result<Parsed, Unschedulable> {
    if let Some(z) = spec.time_zone.as_deref()
        && !matches!(z, "UTC" | "Etc/UTC")
    {
        return Err(Unschedulable {
            reason: "UnknownTimeZone",
            message: format!("invalid timeZone: {z:?}"),
        });
    }
    let bad = |why: &str| Unschedulable {
        reason: "UnparseableSchedule",
        message: format!("unparseable schedule: {:?}: {why}", spec.schedule),
    };
    let parts: Vec<&str> = spec.schedule.split_whitespace().collect();
    if parts.len() != 5 {
        return Err(bad("expected 5 fields"));
    }
    let bounds = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)];
    let mut fields: [Vec<bool>; 5] = Default::default();
    for (i, (part, (lo, hi))) in parts.iter().zip(bounds).enumerate() {
        let mut set = vec![false; hi + 1];
        for item in part.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((r, s)) => (r, s.parse::<usize>().map_err(|_| bad("step"))?),
                None => (item, 1),
            };
            let (a, b) = if range == "*" || range == "?" {
                (lo, hi)
            } else if let Some((a, b)) = range.split_once('-') {
                (
                    a.parse().map_err(|_| bad("range"))?,
                    b.parse().map_err(|_| bad("range"))?,
                )
            } else {
                let a: usize = range.parse().map_err(|_| bad("value"))?;
                (a, if item.contains('/') { hi } else { a })
            };
            if a < lo || b > hi || a > b || step == 0 {
                return Err(bad("out of range"));
            }
            for v in (a..=b).step_by(step) {
                set[v] = true;
            }
        }
        fields[i] = set;
    }
    Ok(Parsed { fields })
}

impl FireTimes for Parsed {
    fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut m = t.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        // Four years of minutes at most (29 February included).
        for _ in 0..(4 * 366 * 24 * 60) {
            let [min, hour, dom, month, dow] = &self.fields;
            if min[m.minute() as usize]
                && hour[m.hour() as usize]
                && dom[m.day() as usize]
                && month[m.month() as usize]
                && dow[m.weekday().num_days_from_sunday() as usize]
            {
                return Some(m);
            }
            m += Duration::minutes(1);
        }
        None
    }
}
