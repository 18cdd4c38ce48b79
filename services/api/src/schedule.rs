//! CronJob schedules: one parser ([`Schedule::parse`]) decides both whether a schedule is
//! valid and when it fires, exactly as Kubernetes reads `spec.schedule` (robfig/cron v3
//! `ParseStandard`) and `spec.timeZone`.
//!
//! Syntax: five fields (minute hour day-of-month month day-of-week) with `*`, `?` (= `*`),
//! lists, ranges, steps, `N/step` (= `N-max/step`), month and weekday names (any case,
//! Sunday = 0); the macros `@yearly` `@annually` `@monthly` `@weekly` `@daily` `@midnight`
//! `@hourly`; `@every <Go duration>`. When both day fields are restricted a day matches if
//! **either** matches; a day field written with a star (`*`, `?`, `*/1`, or a list holding
//! one; not `*/2`) makes them combine with AND (robfig's "star bit": `0 0 * * 1` and
//! `0 0 */1 * 1` fire on Mondays only, `0 0 1-31 * 1` every day, `0 0 */2 * 1` on odd days
//! and on Mondays). `TZ=`/`CRON_TZ=` are refused (use `spec.timeZone`), as are `L`, `W` and
//! `#` (not in the standard parser).
//!
//! Time: fire times are the instants whose wall-clock time in the zone (unset = UTC in bosun;
//! Kubernetes uses the controller host's zone) matches the fields. So a wall time skipped by
//! a spring-forward does not fire that day, and one repeated by a fall-back fires twice, as
//! Kubernetes does (robfig's `Next` walks absolute hours and minutes: the hour loop steps
//! over a skipped hour, the minute loop runs through a repeated one). The rule "a wall time
//! fires at each instant that shows it" is the definition here; robfig reaches it by a walk
//! with special cases (a midnight skipped by DST, as in Sao Paulo before 2019), and the tests
//! check the search against trying every minute. Logically impossible schedules
//! (`59 23 31 2 *`) parse, as in Kubernetes, and never fire ([`Schedule::next_after`] gives
//! `None` after searching eight years, robfig five; the controller's `InvalidSchedule`).
//!
//! `@every D` is robfig's `ConstantDelaySchedule`: D truncated to whole seconds, at least
//! 1 s (so `@every 500ms`, `@every 0s` and even `@every -1h` mean every second, as in
//! Kubernetes), and the next fire is `after` (truncated to the second) + D: it fires at fixed
//! intervals from the *anchor* the caller passes, which must be the last scheduled time (or
//! the creation time), as Kubernetes' controller does; it ignores the time zone.
//!
//! Why no crate: the `cron` crate (0.17, named by the design card) needs a seconds field,
//! numbers weekdays 1 = Sunday, ANDs the two day fields, refuses `@midnight`/`@annually`,
//! has no `@every`, and reports its own errors. An adapter would have to rewrite each field
//! (so parse it anyway, to give Kubernetes' messages), build two schedules and merge them for
//! the OR, and special-case `@every`: two readings of the same text, which the issue forbids.
//! `croner` differs as much (DST: fires a skipped time at 03:00, a repeated one once). The
//! matcher here is small: five bit sets, a walk over wall-clock times, and chrono-tz for the
//! zone (which the api crate already uses), with DST handled once, where wall times become
//! instants.

mod wall;

#[cfg(test)]
mod tests;

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::units::parse_go_duration;
use wall::{Fields, STAR};

/// Why a schedule or a time zone is not valid. The messages are robfig/cron's and
/// Kubernetes' (field errors carry the field's name in front).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("empty spec string")]
    Empty,
    #[error("expected exactly 5 fields, found {0}: {1}")]
    FieldCount(usize, String),
    #[error("cannot use TZ or CRON_TZ in schedule, use timeZone field instead")]
    TimeZonePrefix(String),
    #[error("unrecognized descriptor: {0}")]
    Descriptor(String),
    #[error("failed to parse duration {spec}: time: invalid duration {duration:?}")]
    Duration { spec: String, duration: String },
    #[error("{field}: {message}")]
    Field {
        field: &'static str,
        message: String,
    },
    #[error("timeZone must be nil or non-empty string")]
    EmptyTimeZone,
    #[error("timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones")]
    LocalTimeZone,
    /// A name the zone database does not know (Go's `time.LoadLocation` message).
    #[error("unknown time zone {0}")]
    UnknownTimeZone(String),
}

/// A parsed CronJob schedule in its time zone: when it fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    kind: Kind,
    zone: Tz,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Cron(Fields),
    /// `@every`: whole seconds, at least one.
    Every(i64),
}

/// The largest change of a zone's UTC offset at one transition that the search allows for
/// (DST shifts are 30 min to 2 h). Only near a fall-back does the search look this far.
const WINDOW: TimeDelta = TimeDelta::hours(3);
/// How far ahead (and back) the search looks before it decides a schedule never fires
/// (robfig gives up after five years; eight covers 29 February across 2100).
const YEARS: u64 = 8;
const MINUTE: TimeDelta = TimeDelta::minutes(1);

impl Schedule {
    /// Parses a schedule and an optional IANA zone (None = UTC).
    pub fn parse(schedule: &str, time_zone: Option<&str>) -> Result<Schedule, ScheduleError> {
        let kind = parse_spec(schedule)?;
        let zone = match time_zone {
            None => Tz::UTC,
            Some(z) => parse_time_zone(z)?,
        };
        Ok(Schedule { kind, zone })
    }

    /// The zone the schedule's wall-clock times are read in.
    pub fn time_zone(&self) -> Tz {
        self.zone
    }

    /// For `@every D`: D (whole seconds). Its fire times count from the anchor passed to
    /// [`Schedule::next_after`], not from the wall clock.
    pub fn every(&self) -> Option<std::time::Duration> {
        match self.kind {
            Kind::Every(secs) => Some(std::time::Duration::from_secs(secs.unsigned_abs())),
            Kind::Cron(_) => None,
        }
    }

    /// The first fire time strictly after `after`. `None` when the schedule never fires
    /// again (an impossible date such as 31 February: Kubernetes' `InvalidSchedule`).
    /// For `@every D` it is `after` (truncated to the second) + D.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.kind {
            Kind::Every(secs) => floor_second(after).checked_add_signed(TimeDelta::seconds(*secs)),
            Kind::Cron(f) => self.next_cron(f, after),
        }
    }

    /// Fire times in (after, until], oldest first, at most `limit`: the most recent ones (the
    /// bool says whether older ones were left out). It walks back from `until`, so it costs
    /// about `limit` steps however long the gap (a year of every-minute slots with limit 1
    /// is one step). For `@every` the slots count from `after` (the anchor).
    pub fn times_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> (Vec<DateTime<Utc>>, bool) {
        if until <= after {
            return (Vec::new(), false);
        }
        match &self.kind {
            Kind::Every(secs) => every_between(*secs, after, until, limit),
            Kind::Cron(f) => {
                let mut out = Vec::new();
                let mut t = until;
                while out.len() < limit {
                    match self.prev_cron(f, t, after) {
                        Some(p) => {
                            out.push(p);
                            t = p - TimeDelta::nanoseconds(1);
                        }
                        None => {
                            out.reverse();
                            return (out, false);
                        }
                    }
                }
                let more = self.prev_cron(f, t, after).is_some();
                out.reverse();
                (out, more)
            }
        }
    }

    fn local(&self, t: DateTime<Utc>) -> NaiveDateTime {
        t.with_timezone(&self.zone).naive_local()
    }

    fn offset_secs(&self, t: DateTime<Utc>) -> i32 {
        self.zone
            .offset_from_utc_datetime(&t.naive_utc())
            .fix()
            .local_minus_utc()
    }

    /// Whether the zone's offset is lower at `b` than at `a`: a fall-back between them, so
    /// wall times there repeat and do not map to instants in order.
    fn falls_back(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> bool {
        self.offset_secs(a) > self.offset_secs(b)
    }

    /// The instants a wall time names: none (skipped by a spring-forward), one, or two
    /// (repeated by a fall-back).
    fn instants(&self, w: NaiveDateTime) -> impl Iterator<Item = DateTime<Utc>> {
        let (a, b) = match self.zone.from_local_datetime(&w) {
            LocalResult::None => (None, None),
            LocalResult::Single(a) => (Some(a), None),
            LocalResult::Ambiguous(a, b) => (Some(a), Some(b)),
        };
        a.into_iter().chain(b).map(|t| t.with_timezone(&Utc))
    }

    /// Walks matching wall times forward. They map to increasing instants except around a
    /// fall-back, where the search starts up to [`WINDOW`] earlier and goes on up to
    /// [`WINDOW`] past the best candidate.
    fn next_cron(&self, f: &Fields, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let la = self.local(after);
        let back = if self.falls_back(after, after + WINDOW) {
            WINDOW
        } else {
            TimeDelta::zero()
        };
        let mut w = floor_minute(la - back);
        let limit = wall::add_years(la.date(), YEARS);
        let mut best: Option<(DateTime<Utc>, NaiveDateTime)> = None;
        loop {
            if let Some((bi, _)) = best
                && !self.falls_back(bi - WINDOW, bi)
            {
                break;
            }
            let Some(n) = f.next_wall(w, limit) else {
                break;
            };
            if let Some((_, bw)) = best
                && n > bw + WINDOW
            {
                break;
            }
            for i in self.instants(n) {
                if i > after && best.is_none_or(|(bi, _)| i < bi) {
                    best = Some((i, n));
                }
            }
            w = n + MINUTE;
        }
        best.map(|(i, _)| i)
    }

    /// The last fire time in (after, until]: [`Schedule::next_cron`] mirrored.
    fn prev_cron(
        &self,
        f: &Fields,
        until: DateTime<Utc>,
        after: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let lu = self.local(until);
        let ahead = if self.falls_back(until - WINDOW, until) {
            WINDOW
        } else {
            TimeDelta::zero()
        };
        let mut w = floor_minute(lu + ahead);
        let lowest = self.local(after) - WINDOW;
        let floor = wall::sub_years(lu.date(), YEARS).max(lowest.date());
        let mut best: Option<(DateTime<Utc>, NaiveDateTime)> = None;
        loop {
            if let Some((bi, _)) = best
                && !self.falls_back(bi, bi + WINDOW)
            {
                break;
            }
            let Some(n) = f.prev_wall(w, floor) else {
                break;
            };
            if n < lowest || best.is_some_and(|(_, bw)| n < bw - WINDOW) {
                break;
            }
            for i in self.instants(n) {
                if i <= until && i > after && best.is_none_or(|(bi, _)| i > bi) {
                    best = Some((i, n));
                }
            }
            w = n - MINUTE;
        }
        best.map(|(i, _)| i)
    }
}

/// `@every`'s slots in (after, until]: after (truncated to the second) + k × secs.
fn every_between(
    secs: i64,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: usize,
) -> (Vec<DateTime<Utc>>, bool) {
    let anchor = floor_second(after);
    // Slot k is in range when k × secs <= until − anchor (anchor is a whole second).
    let slots = (until - anchor).num_seconds() / secs;
    let take = slots.min(i64::try_from(limit).unwrap_or(i64::MAX));
    let times = (slots - take + 1..=slots)
        .filter_map(|k| anchor.checked_add_signed(TimeDelta::seconds(k.checked_mul(secs)?)))
        .collect();
    (times, slots > take)
}

fn floor_second(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).unwrap_or(t)
}

fn floor_minute(w: NaiveDateTime) -> NaiveDateTime {
    w.with_nanosecond(0)
        .and_then(|w| w.with_second(0))
        .unwrap_or(w)
}

/// Checks a CronJob schedule (Kubernetes' `cron.ParseStandard`): [`Schedule::parse`]
/// without a zone.
pub fn validate_schedule(schedule: &str) -> Result<(), ScheduleError> {
    parse_spec(schedule).map(|_| ())
}

/// Checks `spec.timeZone` as Kubernetes' `validateTimeZone` does and loads it.
pub fn parse_time_zone(tz: &str) -> Result<Tz, ScheduleError> {
    if tz.is_empty() {
        return Err(ScheduleError::EmptyTimeZone);
    }
    // Each path part: ^[A-Za-z.\-_0-9+]{1,14}$, not `.`/`..`, not starting with `-`.
    let part_ok = |part: &str| {
        part != "."
            && part != ".."
            && !part.starts_with('-')
            && (1..=14).contains(&part.len())
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c))
    };
    if !tz.split('/').all(part_ok) {
        return Err(ScheduleError::UnknownTimeZone(tz.to_string()));
    }
    if tz.eq_ignore_ascii_case("Local") {
        return Err(ScheduleError::LocalTimeZone);
    }
    tz.parse::<Tz>()
        .map_err(|_| ScheduleError::UnknownTimeZone(tz.to_string()))
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

struct Bounds {
    name: &'static str,
    min: u64,
    max: u64,
    names: &'static [&'static str],
    /// The value of the first name (`jan` = 1, `sun` = 0).
    first_name: u64,
}

const MINUTES: Bounds = Bounds {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
    first_name: 0,
};
const HOURS: Bounds = Bounds {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
    first_name: 0,
};
const DOMS: Bounds = Bounds {
    name: "day of month",
    min: 1,
    max: 31,
    names: &[],
    first_name: 0,
};
const MONTH: Bounds = Bounds {
    name: "month",
    min: 1,
    max: 12,
    names: &MONTHS,
    first_name: 1,
};
const DOWS: Bounds = Bounds {
    name: "day of week",
    min: 0,
    max: 6,
    names: &DAYS,
    first_name: 0,
};

/// robfig's `Parse` with `ParseStandard`'s options, and Kubernetes' refusal of `TZ`.
fn parse_spec(spec: &str) -> Result<Kind, ScheduleError> {
    if spec.is_empty() {
        return Err(ScheduleError::Empty);
    }
    // Kubernetes refuses any schedule containing "TZ" (`validateScheduleFormat`).
    if spec.contains("TZ") {
        return Err(ScheduleError::TimeZonePrefix(spec.to_string()));
    }
    // Like robfig, no trimming: " @daily" is five fields short, "@daily " unrecognized.
    if spec.starts_with('@') {
        return parse_descriptor(spec);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(ScheduleError::FieldCount(
            fields.len(),
            format!("[{}]", fields.join(" ")),
        ));
    }
    let field = |text: &str, b: &Bounds| {
        get_field(text, b).map_err(|message| ScheduleError::Field {
            field: b.name,
            message,
        })
    };
    Ok(Kind::Cron(Fields {
        minute: field(fields[0], &MINUTES)?,
        hour: field(fields[1], &HOURS)?,
        dom: field(fields[2], &DOMS)?,
        month: field(fields[3], &MONTH)?,
        dow: field(fields[4], &DOWS)?,
    }))
}

fn parse_descriptor(spec: &str) -> Result<Kind, ScheduleError> {
    let all = |b: &Bounds| bits(b.min, b.max, 1) | STAR;
    let one = |b: &Bounds| 1u64 << b.min;
    let fields = |minute, hour, dom, month, dow| {
        Ok(Kind::Cron(Fields {
            minute,
            hour,
            dom,
            month,
            dow,
        }))
    };
    match spec {
        "@yearly" | "@annually" => fields(
            one(&MINUTES),
            one(&HOURS),
            one(&DOMS),
            one(&MONTH),
            all(&DOWS),
        ),
        "@monthly" => fields(
            one(&MINUTES),
            one(&HOURS),
            one(&DOMS),
            all(&MONTH),
            all(&DOWS),
        ),
        "@weekly" => fields(
            one(&MINUTES),
            one(&HOURS),
            all(&DOMS),
            all(&MONTH),
            one(&DOWS),
        ),
        "@daily" | "@midnight" => fields(
            one(&MINUTES),
            one(&HOURS),
            all(&DOMS),
            all(&MONTH),
            all(&DOWS),
        ),
        "@hourly" => fields(
            one(&MINUTES),
            all(&HOURS),
            all(&DOMS),
            all(&MONTH),
            all(&DOWS),
        ),
        _ => match spec.strip_prefix("@every ") {
            Some(d) => parse_every(d).ok_or_else(|| ScheduleError::Duration {
                spec: spec.to_string(),
                duration: d.to_string(),
            }),
            None => Err(ScheduleError::Descriptor(spec.to_string())),
        },
    }
}

/// Go's `time.ParseDuration` (with its sign), then robfig's `Every`: truncated to whole
/// seconds, at least one.
fn parse_every(d: &str) -> Option<Kind> {
    let (negative, magnitude) = match d.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, d.strip_prefix('+').unwrap_or(d)),
    };
    let secs = parse_go_duration(magnitude)?;
    // Go's Duration is an int64 of nanoseconds (about 292 years).
    if !secs.is_finite() || secs > i64::MAX as f64 / 1e9 {
        return None;
    }
    let whole = if negative { 0 } else { secs.trunc() as i64 };
    Some(Kind::Every(whole.max(1)))
}

/// A comma-separated list of ranges (robfig's `getField`; empty elements are ignored).
fn get_field(text: &str, b: &Bounds) -> Result<u64, String> {
    text.split(',')
        .filter(|r| !r.is_empty())
        .try_fold(0, |acc, r| Ok(acc | get_range(r, b)?))
}

/// One list element: `*`, `?`, `N`, `N-M`, each optionally `/step` (robfig's `getRange`,
/// quirks included: `*-5` is `*`).
fn get_range(expr: &str, b: &Bounds) -> Result<u64, String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let mut extra = 0;
    let (start, mut end) = if low_and_high[0] == "*" || low_and_high[0] == "?" {
        extra = STAR;
        (b.min, b.max)
    } else {
        let start = int_or_name(low_and_high[0], b)?;
        match low_and_high.len() {
            1 => (start, start),
            2 => (start, int_or_name(low_and_high[1], b)?),
            _ => return Err(format!("too many hyphens: {expr}")),
        }
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = must_parse_int(range_and_step[1])?;
            // `N/step` means `N-max/step`.
            if low_and_high.len() == 1 {
                end = b.max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < b.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        ));
    }
    if end > b.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(bits(start, end, step) | extra)
}

/// Bits `start..=end` every `step` (all within 0..=59).
fn bits(start: u64, end: u64, step: u64) -> u64 {
    let step = usize::try_from(step).unwrap_or(usize::MAX);
    (start..=end).step_by(step).fold(0, |acc, v| acc | 1 << v)
}

fn int_or_name(text: &str, b: &Bounds) -> Result<u64, String> {
    let lower = text.to_ascii_lowercase();
    match b.names.iter().position(|n| *n == lower) {
        Some(i) => Ok(i as u64 + b.first_name),
        None => must_parse_int(text),
    }
}

/// Go's `strconv.Atoi` and robfig's refusal of negative numbers, with their messages.
fn must_parse_int(text: &str) -> Result<u64, String> {
    let n: i64 = text.parse().map_err(|_| {
        let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
        let why = if !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()) {
            "value out of range"
        } else {
            "invalid syntax"
        };
        format!("failed to parse int from {text}: strconv.Atoi: parsing {text:?}: {why}")
    })?;
    u64::try_from(n).map_err(|_| format!("negative number ({n}) not allowed: {text}"))
}
