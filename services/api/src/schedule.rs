//! CronJob schedule syntax, as Kubernetes accepts it (`robfig/cron/v3` `ParseStandard`):
//! five fields (minute hour day-of-month month day-of-week) with `*`, `?`, lists, ranges,
//! steps and month/weekday names, the `@yearly`...`@hourly` macros and `@every <duration>`.
//! `TZ=`/`CRON_TZ=` prefixes are rejected (use `spec.timeZone`), as are `L`, `W` and `#`.

use crate::units::parse_go_duration;

/// Why a schedule is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("expected exactly 5 fields, found {0}: {1:?}")]
    FieldCount(usize, String),
    #[error("CRON_TZ or TZ used in schedule {0:?} is not supported, use spec.timeZone instead")]
    TimeZonePrefix(String),
    #[error("unrecognized descriptor: {0}")]
    Descriptor(String),
    #[error("failed to parse duration {0}")]
    Duration(String),
    #[error("{field}: {message}")]
    Field {
        field: &'static str,
        message: String,
    },
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

struct Bounds {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// The value of the first name (`jan` = 1, `sun` = 0).
    first_name: u32,
}

const FIELDS: [Bounds; 5] = [
    Bounds {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
        first_name: 0,
    },
    Bounds {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
        first_name: 0,
    },
    Bounds {
        name: "day of month",
        min: 1,
        max: 31,
        names: &[],
        first_name: 0,
    },
    Bounds {
        name: "month",
        min: 1,
        max: 12,
        names: &MONTHS,
        first_name: 1,
    },
    Bounds {
        name: "day of week",
        min: 0,
        max: 6,
        names: &DAYS,
        first_name: 0,
    },
];

/// Checks a CronJob schedule.
pub fn validate_schedule(schedule: &str) -> Result<(), ScheduleError> {
    let s = schedule.trim();
    if s.starts_with("TZ=") || s.starts_with("CRON_TZ=") {
        return Err(ScheduleError::TimeZonePrefix(schedule.to_string()));
    }
    if let Some(macro_) = s.strip_prefix('@') {
        if let Some(d) = macro_.strip_prefix("every ") {
            return parse_go_duration(d.trim())
                .filter(|secs| *secs > 0.0)
                .map(|_| ())
                .ok_or_else(|| ScheduleError::Duration(d.trim().to_string()));
        }
        return match macro_ {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            _ => Err(ScheduleError::Descriptor(s.to_string())),
        };
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(ScheduleError::FieldCount(fields.len(), s.to_string()));
    }
    for (text, bounds) in fields.iter().zip(FIELDS.iter()) {
        for part in text.split(',') {
            parse_range(part, bounds).map_err(|message| ScheduleError::Field {
                field: bounds.name,
                message,
            })?;
        }
    }
    Ok(())
}

/// One list element: `*`, `?`, `N`, `N-M`, each optionally `/step`.
fn parse_range(part: &str, b: &Bounds) -> Result<(), String> {
    let (range, step) = match part.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (part, None),
    };
    let (lo, hi) = if range == "*" || range == "?" {
        (b.min, b.max)
    } else {
        let (lo_text, hi_text) = match range.split_once('-') {
            Some((l, h)) => (l, Some(h)),
            None => (range, None),
        };
        let lo = value(lo_text, b)?;
        let hi = match hi_text {
            Some(h) => value(h, b)?,
            // `N/step` means N through the maximum.
            None if step.is_some() => b.max,
            None => lo,
        };
        (lo, hi)
    };
    if lo > hi {
        return Err(format!(
            "beginning of range ({lo}) beyond end of range ({hi}): {part}"
        ));
    }
    if let Some(step) = step {
        match step.parse::<u32>() {
            Ok(0) => return Err(format!("step of range should be a positive number: {part}")),
            Ok(_) => {}
            Err(_) => return Err(format!("failed to parse int from {step}")),
        }
    }
    Ok(())
}

fn value(text: &str, b: &Bounds) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + b.first_name);
    }
    let v: u32 = text
        .parse()
        .map_err(|_| format!("failed to parse int from {text}"))?;
    if v < b.min {
        return Err(format!(
            "beginning of range ({v}) below minimum ({})",
            b.min
        ));
    }
    if v > b.max {
        return Err(format!("end of range ({v}) above maximum ({})", b.max));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_schedules_are_accepted() {
        for s in [
            "*/1 * * * *",
            "0,15,30,45 * * * *",
            "0 3 * * 0",
            "0,30 * 1 * *",
            "5 4 * * sun",
            "0 0 1 jan-jun/2 mon-fri",
            "15/5 * * * ?",
            "0 22 * * 1-5",
            "@yearly",
            "@annually",
            "@monthly",
            "@weekly",
            "@daily",
            "@midnight",
            "@hourly",
            "@every 1h30m",
            "@every 5s",
            "59 23 31 2 *",
        ] {
            assert_eq!(validate_schedule(s), Ok(()), "{s}");
        }
    }

    #[test]
    fn malformed_schedules_are_rejected() {
        for s in [
            "",
            "* * * *",
            "* * * * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 7",
            "5-1 * * * *",
            "*/0 * * * *",
            "L * * * *",
            "* * L * *",
            "* * 15W * *",
            "* * * * 1#2",
            "TZ=UTC * * * * *",
            "CRON_TZ=Europe/Paris 0 * * * *",
            "@reboot",
            "@every",
            "@every soon",
            "abc * * * *",
        ] {
            assert!(validate_schedule(s).is_err(), "{s}");
        }
    }
}
