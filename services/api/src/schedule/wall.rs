//! The five cron fields as bit sets, and the wall-clock times (no zone) that match them.
//! [`super::Schedule`] maps those wall times onto instants in the CronJob's zone.

use chrono::{Datelike, Days, NaiveDate, NaiveDateTime, Timelike};

/// robfig/cron's "star bit": set on a field written with `*` or `?` (also `*/1`, and a list
/// holding either). A day-of-month or day-of-week field carrying it makes the two day fields
/// combine with AND instead of OR.
pub(super) const STAR: u64 = 1 << 63;

/// The parsed fields: bit `n` set means value `n` matches (plus [`STAR`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fields {
    pub minute: u64,
    pub hour: u64,
    pub dom: u64,
    pub month: u64,
    pub dow: u64,
}

impl Fields {
    /// robfig's `dayMatches`: OR when both day fields are restricted, AND when either one
    /// was written with a star.
    fn day_matches(&self, d: NaiveDate) -> bool {
        let dom = self.dom & (1 << d.day()) != 0;
        let dow = self.dow & (1 << d.weekday().num_days_from_sunday()) != 0;
        if (self.dom | self.dow) & STAR != 0 {
            dom && dow
        } else {
            dom || dow
        }
    }

    fn month_matches(&self, d: NaiveDate) -> bool {
        self.month & (1 << d.month()) != 0
    }

    /// Whether a wall time matches (the tests' brute-force oracle).
    #[cfg(test)]
    pub fn matches(&self, w: NaiveDateTime) -> bool {
        w.second() == 0
            && self.month_matches(w.date())
            && self.day_matches(w.date())
            && self.hour & (1 << w.hour()) != 0
            && self.minute & (1 << w.minute()) != 0
    }

    /// The first matching wall time at or after `w` (taken at its minute), not past
    /// `limit`'s day.
    pub fn next_wall(&self, w: NaiveDateTime, limit: NaiveDate) -> Option<NaiveDateTime> {
        let (mut date, mut h, mut m) = (w.date(), w.hour(), w.minute());
        loop {
            if date > limit {
                return None;
            }
            if !self.month_matches(date) {
                // The first day of the next month.
                date = date
                    .with_day(1)?
                    .checked_add_months(chrono::Months::new(1))?;
                (h, m) = (0, 0);
                continue;
            }
            if !self.day_matches(date) {
                date = date.succ_opt()?;
                (h, m) = (0, 0);
                continue;
            }
            match next_bit(self.hour, h) {
                None => {
                    date = date.succ_opt()?;
                    (h, m) = (0, 0);
                    continue;
                }
                Some(nh) if nh != h => (h, m) = (nh, 0),
                Some(_) => {}
            }
            match next_bit(self.minute, m) {
                Some(nm) => return date.and_hms_opt(h, nm, 0),
                None if h == 23 => {
                    date = date.succ_opt()?;
                    (h, m) = (0, 0);
                }
                None => (h, m) = (h + 1, 0),
            }
        }
    }

    /// The last matching wall time at or before `w` (taken at its minute), not before
    /// `floor`'s day.
    pub fn prev_wall(&self, w: NaiveDateTime, floor: NaiveDate) -> Option<NaiveDateTime> {
        let (mut date, mut h, mut m) = (w.date(), w.hour(), w.minute());
        loop {
            if date < floor {
                return None;
            }
            if !self.month_matches(date) {
                // The last day of the previous month.
                date = date.with_day(1)?.pred_opt()?;
                (h, m) = (23, 59);
                continue;
            }
            if !self.day_matches(date) {
                date = date.pred_opt()?;
                (h, m) = (23, 59);
                continue;
            }
            match prev_bit(self.hour, h) {
                None => {
                    date = date.pred_opt()?;
                    (h, m) = (23, 59);
                    continue;
                }
                Some(ph) if ph != h => (h, m) = (ph, 59),
                Some(_) => {}
            }
            match prev_bit(self.minute, m) {
                Some(pm) => return date.and_hms_opt(h, pm, 0),
                None if h == 0 => {
                    date = date.pred_opt()?;
                    (h, m) = (23, 59);
                }
                None => (h, m) = (h - 1, 59),
            }
        }
    }
}

/// The lowest set bit at or above `from` (`from` < 63), star bit excluded.
fn next_bit(bits: u64, from: u32) -> Option<u32> {
    let masked = bits & !STAR & (!0u64 << from);
    (masked != 0).then(|| masked.trailing_zeros())
}

/// The highest set bit at or below `upto` (`upto` < 63), star bit excluded.
fn prev_bit(bits: u64, upto: u32) -> Option<u32> {
    let masked = bits & !STAR & ((2u64 << upto) - 1);
    (masked != 0).then(|| 63 - masked.leading_zeros())
}

/// `d` plus `years` years (the limit of a search; robfig gives up after five).
pub(super) fn add_years(d: NaiveDate, years: u64) -> NaiveDate {
    d.checked_add_days(Days::new(years * 366))
        .unwrap_or(NaiveDate::MAX)
}

/// `d` minus `years` years.
pub(super) fn sub_years(d: NaiveDate, years: u64) -> NaiveDate {
    d.checked_sub_days(Days::new(years * 366))
        .unwrap_or(NaiveDate::MIN)
}
