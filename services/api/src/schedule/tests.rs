use super::*;

const NY: Option<&str> = Some("America/New_York");
const LONDON: Option<&str> = Some("Europe/London");
const LORD_HOWE: Option<&str> = Some("Australia/Lord_Howe");
const TOKYO: Option<&str> = Some("Asia/Tokyo");
const UTC: Option<&str> = None;

/// name, schedule, zone, after, next fire time.
type NextRow = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    Option<&'static str>,
);
/// name, schedule, zone, after, until, limit, fire times, more left out.
type BetweenRow = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static str,
    usize,
    &'static [&'static str],
    bool,
);

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

fn parse(schedule: &str, zone: Option<&str>) -> Schedule {
    Schedule::parse(schedule, zone).unwrap_or_else(|e| panic!("{schedule} {zone:?}: {e}"))
}

/// Expressions × instants × zones → the next fire time (local times written with their
/// offset). DST in 2026: New York 8 Mar 02:00 EST → 03:00 EDT and 1 Nov 02:00 EDT → 01:00
/// EST; London 29 Mar 01:00 GMT → 02:00 BST and 25 Oct 02:00 BST → 01:00 GMT; Lord Howe
/// 5 Apr 02:00 (+11) → 01:30 (+10:30) and 4 Oct 02:00 (+10:30) → 02:30 (+11).
#[test]
fn next_fire_times_follow_kubernetes_in_every_zone_and_across_dst() {
    #[rustfmt::skip]
    let rows: &[NextRow] = &[
        // name, schedule, zone, after, next
        ("every minute", "*/1 * * * *", UTC, "2026-12-05T10:00:30Z", Some("2026-12-05T10:01:00Z")),
        ("strictly after a fire time", "*/1 * * * *", UTC, "2026-12-05T10:01:00Z", Some("2026-12-05T10:02:00Z")),
        ("quarter hours", "0,15,30,45 * * * *", UTC, "2026-12-05T10:15:00Z", Some("2026-12-05T10:30:00Z")),
        ("wraps to the next year", "0 0 1 1 *", UTC, "2026-12-05T10:00:00Z", Some("2027-01-01T00:00:00Z")),
        ("29 February waits for a leap year", "0 0 29 2 *", UTC, "2026-12-05T10:00:00Z", Some("2028-02-29T00:00:00Z")),
        ("range with a step", "0 9-17/4 * * *", UTC, "2026-12-05T10:00:00Z", Some("2026-12-05T13:00:00Z")),
        ("N/step means N-max/step", "5/15 * * * *", UTC, "2026-12-05T10:50:00Z", Some("2026-12-05T11:05:00Z")),
        ("N/step starts at N", "30/10 * * * *", UTC, "2026-12-05T10:55:00Z", Some("2026-12-05T11:30:00Z")),
        ("N/step on hours", "0 20/2 * * *", UTC, "2026-12-05T22:30:00Z", Some("2026-12-06T20:00:00Z")),
        ("month and weekday names, any case", "0 12 * JUL Mon", UTC, "2026-12-05T10:00:00Z", Some("2027-07-05T12:00:00Z")),
        ("month name range", "0 0 1 feb-mar *", UTC, "2026-12-05T10:00:00Z", Some("2027-02-01T00:00:00Z")),
        ("weekday name range", "0 9 * * mon-fri", UTC, "2026-12-04T09:00:00Z", Some("2026-12-07T09:00:00Z")),
        ("question mark is a star", "0 0 ? * 1", UTC, "2026-12-05T10:00:00Z", Some("2026-12-07T00:00:00Z")),
        ("robfig quirk: *-5 is *", "*-5 * * * *", UTC, "2026-12-05T10:00:00Z", Some("2026-12-05T10:01:00Z")),
        // Day of month OR day of week when both are restricted; a star in either means AND.
        ("DOM or DOW: the Monday comes first", "0 0 1 * 1", UTC, "2026-12-05T10:00:00Z", Some("2026-12-07T00:00:00Z")),
        ("DOM or DOW: the 1st comes first", "0 0 1 * 1", UTC, "2026-12-28T10:00:00Z", Some("2027-01-01T00:00:00Z")),
        ("DOM or DOW: Friday or the 13th", "0 0 13 * 5", UTC, "2026-12-05T10:00:00Z", Some("2026-12-11T00:00:00Z")),
        ("1-31 has no star: every day", "0 0 1-31 * 1", UTC, "2026-12-05T10:00:00Z", Some("2026-12-06T00:00:00Z")),
        ("*/1 keeps the star: Mondays only", "0 0 */1 * 1", UTC, "2026-12-05T10:00:00Z", Some("2026-12-07T00:00:00Z")),
        ("*/2 drops the star: odd days or Mondays", "0 0 */2 * 1", UTC, "2026-12-07T10:00:00Z", Some("2026-12-09T00:00:00Z")),
        ("star in DOW: the 13th only", "0 0 13 * *", UTC, "2026-12-05T10:00:00Z", Some("2026-12-13T00:00:00Z")),
        ("a star in a DOW list: AND", "0 0 13 * 5,*", UTC, "2026-12-05T10:00:00Z", Some("2026-12-13T00:00:00Z")),
        // Macros.
        ("@yearly", "@yearly", UTC, "2026-12-05T10:00:00Z", Some("2027-01-01T00:00:00Z")),
        ("@annually", "@annually", UTC, "2026-12-05T10:00:00Z", Some("2027-01-01T00:00:00Z")),
        ("@monthly", "@monthly", UTC, "2026-02-10T10:00:00Z", Some("2026-03-01T00:00:00Z")),
        ("@weekly is Sunday midnight", "@weekly", UTC, "2026-12-05T10:00:00Z", Some("2026-12-06T00:00:00Z")),
        ("@daily", "@daily", UTC, "2026-12-05T10:00:00Z", Some("2026-12-06T00:00:00Z")),
        ("@midnight", "@midnight", UTC, "2026-12-05T10:00:00Z", Some("2026-12-06T00:00:00Z")),
        ("@hourly", "@hourly", UTC, "2026-12-05T10:00:00Z", Some("2026-12-05T11:00:00Z")),
        ("@monthly in a zone", "@monthly", TOKYO, "2026-12-05T10:00:00+09:00", Some("2027-01-01T00:00:00+09:00")),
        // Never: Kubernetes accepts these, its controller reports InvalidSchedule.
        ("31 February never comes", "59 23 31 2 *", UTC, "2026-12-05T10:00:00Z", None),
        ("an empty list never matches", ", * * * *", UTC, "2026-12-05T10:00:00Z", None),
        // @every: after (truncated to the second) + the delay (whole seconds, at least 1 s).
        ("@every from the anchor", "@every 90m", UTC, "2026-12-05T10:00:00.5Z", Some("2026-12-05T11:30:00Z")),
        ("@every truncates to seconds", "@every 1.9s", UTC, "2026-12-05T10:00:00Z", Some("2026-12-05T10:00:01Z")),
        ("@every under a second is 1 s", "@every 500ms", UTC, "2026-12-05T10:00:00.7Z", Some("2026-12-05T10:00:01Z")),
        ("@every 0s is 1 s", "@every 0s", UTC, "2026-12-05T10:00:00Z", Some("2026-12-05T10:00:01Z")),
        ("@every negative is 1 s", "@every -1h", UTC, "2026-12-05T10:00:00Z", Some("2026-12-05T10:00:01Z")),
        ("@every ignores the zone", "@every 1h", NY, "2026-03-08T01:30:00-05:00", Some("2026-03-08T03:30:00-04:00")),
        // A zone without DST.
        ("Tokyo 09:00 weekdays", "0 9 * * mon-fri", TOKYO, "2026-12-04T09:00:00+09:00", Some("2026-12-07T09:00:00+09:00")),
        ("Tokyo midnight", "0 0 * * *", TOKYO, "2026-12-05T15:00:00Z", Some("2026-12-06T15:00:00Z")),
        // New York, spring forward: 02:00-02:59 does not exist on 8 March.
        ("NY 02:30 skipped on the spring-forward day", "30 2 * * *", NY, "2026-03-07T12:00:00-05:00", Some("2026-03-09T02:30:00-04:00")),
        ("NY 02:00 skipped", "0 2 * * *", NY, "2026-03-08T00:00:00-05:00", Some("2026-03-09T02:00:00-04:00")),
        ("NY 01:59 before the jump", "59 1 * * *", NY, "2026-03-08T00:00:00-05:00", Some("2026-03-08T01:59:00-05:00")),
        ("NY 03:00 right after the jump", "0 3 * * *", NY, "2026-03-08T01:59:00-05:00", Some("2026-03-08T03:00:00-04:00")),
        ("NY every minute jumps the gap", "* * * * *", NY, "2026-03-08T01:59:00-05:00", Some("2026-03-08T03:00:00-04:00")),
        // New York, fall back: 01:00-01:59 happens twice on 1 November.
        ("NY 01:30 first time", "30 1 * * *", NY, "2026-10-31T12:00:00-04:00", Some("2026-11-01T01:30:00-04:00")),
        ("NY 01:30 second time", "30 1 * * *", NY, "2026-11-01T01:30:00-04:00", Some("2026-11-01T01:30:00-05:00")),
        ("NY 01:30 then the next day", "30 1 * * *", NY, "2026-11-01T01:30:00-05:00", Some("2026-11-02T01:30:00-05:00")),
        ("NY hourly at the first 01:00", "0 * * * *", NY, "2026-11-01T00:30:00-04:00", Some("2026-11-01T01:00:00-04:00")),
        ("NY hourly at the second 01:00", "0 * * * *", NY, "2026-11-01T01:00:00-04:00", Some("2026-11-01T01:00:00-05:00")),
        ("NY hourly after the repeat", "0 * * * *", NY, "2026-11-01T01:00:00-05:00", Some("2026-11-01T02:00:00-05:00")),
        ("NY back to an earlier wall time", "*/20 1 * * *", NY, "2026-11-01T01:50:00-04:00", Some("2026-11-01T01:00:00-05:00")),
        ("NY 02:00 once on the fall-back day", "0 2 * * *", NY, "2026-11-01T01:30:00-04:00", Some("2026-11-01T02:00:00-05:00")),
        ("NY midnight across the fall back", "@daily", NY, "2026-10-31T23:00:00-04:00", Some("2026-11-01T00:00:00-04:00")),
        // London: 01:00-01:59 skipped on 29 March, repeated on 25 October.
        ("London 01:30 skipped", "30 1 * * *", LONDON, "2026-03-28T12:00:00Z", Some("2026-03-30T01:30:00+01:00")),
        ("London 02:00 exists", "0 2 * * *", LONDON, "2026-03-28T12:00:00Z", Some("2026-03-29T02:00:00+01:00")),
        ("London 01:30 BST", "30 1 * * *", LONDON, "2026-10-25T00:00:00+01:00", Some("2026-10-25T01:30:00+01:00")),
        ("London 01:30 GMT", "30 1 * * *", LONDON, "2026-10-25T01:30:00+01:00", Some("2026-10-25T01:30:00+00:00")),
        ("London weekly across the change", "@weekly", LONDON, "2026-03-28T12:00:00Z", Some("2026-03-29T00:00:00+00:00")),
        // Lord Howe: a 30-minute shift. 02:00-02:29 skipped on 4 October; 01:30-01:59
        // repeated on 5 April.
        ("Lord Howe 02:15 skipped", "15 2 * * *", LORD_HOWE, "2026-10-03T12:00:00+10:30", Some("2026-10-05T02:15:00+11:00")),
        ("Lord Howe 02:45 exists", "45 2 * * *", LORD_HOWE, "2026-10-03T12:00:00+10:30", Some("2026-10-04T02:45:00+11:00")),
        ("Lord Howe 02:00 skipped", "0 2 * * *", LORD_HOWE, "2026-10-03T12:00:00+10:30", Some("2026-10-05T02:00:00+11:00")),
        ("Lord Howe every 15 min jumps the gap", "*/15 * * * *", LORD_HOWE, "2026-10-04T01:45:00+10:30", Some("2026-10-04T02:30:00+11:00")),
        ("Lord Howe 01:45 first time", "45 1 * * *", LORD_HOWE, "2026-04-04T12:00:00+11:00", Some("2026-04-05T01:45:00+11:00")),
        ("Lord Howe 01:45 second time", "45 1 * * *", LORD_HOWE, "2026-04-05T01:45:00+11:00", Some("2026-04-05T01:45:00+10:30")),
        ("Lord Howe 01:15 only once", "15 1 * * *", LORD_HOWE, "2026-04-05T01:15:00+11:00", Some("2026-04-06T01:15:00+10:30")),
        ("Lord Howe every 15 min goes back", "*/15 * * * *", LORD_HOWE, "2026-04-05T01:45:00+11:00", Some("2026-04-05T01:30:00+10:30")),
        ("Lord Howe 02:00 once", "0 2 * * *", LORD_HOWE, "2026-04-05T00:00:00+11:00", Some("2026-04-05T02:00:00+10:30")),
    ];
    for (name, schedule, zone, after, want) in rows {
        let got = parse(schedule, *zone).next_after(t(after));
        assert_eq!(
            got,
            want.map(t),
            "{name}: {schedule:?} in {zone:?} after {after}"
        );
    }
}

#[test]
fn invalid_schedules_and_zones_report_kubernetes_messages() {
    #[rustfmt::skip]
    let rows: &[(&str, &str, Option<&str>, &str)] = &[
        ("empty", "", None, "empty spec string"),
        ("four fields", "* * * *", None, "expected exactly 5 fields, found 4: [* * * *]"),
        ("six fields (no seconds)", "0 * * * * *", None, "expected exactly 5 fields, found 6: [0 * * * * *]"),
        ("a leading space before a macro", " @daily", None, "expected exactly 5 fields, found 1: [@daily]"),
        ("minute 60", "60 * * * *", None, "minute: end of range (60) above maximum (59): 60"),
        ("hour 24", "* 24 * * *", None, "hour: end of range (24) above maximum (23): 24"),
        ("day 0", "* * 0 * *", None, "day of month: beginning of range (0) below minimum (1): 0"),
        ("month 13", "* * * 13 *", None, "month: end of range (13) above maximum (12): 13"),
        ("weekday 7", "* * * * 7", None, "day of week: end of range (7) above maximum (6): 7"),
        ("backwards range", "5-1 * * * *", None, "minute: beginning of range (5) beyond end of range (1): 5-1"),
        ("N/step past the maximum", "70/5 * * * *", None, "minute: beginning of range (70) beyond end of range (59): 70/5"),
        ("zero step", "*/0 * * * *", None, "minute: step of range should be a positive number: */0"),
        ("negative step", "*/-1 * * * *", None, "minute: negative number (-1) not allowed: -1"),
        ("too many hyphens", "1-2-3 * * * *", None, "minute: too many hyphens: 1-2-3"),
        ("too many slashes", "*/2/3 * * * *", None, "minute: too many slashes: */2/3"),
        ("L", "* * L * *", None, "day of month: failed to parse int from L: strconv.Atoi: parsing \"L\": invalid syntax"),
        ("W", "* * 15W * *", None, "day of month: failed to parse int from 15W: strconv.Atoi: parsing \"15W\": invalid syntax"),
        ("#", "* * * * 1#2", None, "day of week: failed to parse int from 1#2: strconv.Atoi: parsing \"1#2\": invalid syntax"),
        ("weekday names are not months", "* * * mon *", None, "month: failed to parse int from mon: strconv.Atoi: parsing \"mon\": invalid syntax"),
        ("TZ prefix", "TZ=UTC * * * * *", None, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"),
        ("CRON_TZ prefix", "CRON_TZ=Europe/Paris 0 * * * *", None, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"),
        ("unknown macro", "@reboot", None, "unrecognized descriptor: @reboot"),
        ("macro with a trailing space", "@daily ", None, "unrecognized descriptor: @daily "),
        ("@every without a duration", "@every", None, "unrecognized descriptor: @every"),
        ("@every with a word", "@every soon", None, "failed to parse duration @every soon: time: invalid duration \"soon\""),
        ("@every without a unit", "@every 5", None, "failed to parse duration @every 5: time: invalid duration \"5\""),
        ("unknown zone", "* * * * *", Some("Mars/Olympus"), "unknown time zone Mars/Olympus"),
        ("empty zone", "* * * * *", Some(""), "timeZone must be nil or non-empty string"),
        ("Local", "* * * * *", Some("Local"), "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"),
        ("zone path part too long", "* * * * *", Some("America/Argentina_Buenos"), "unknown time zone America/Argentina_Buenos"),
        ("zone with ..", "* * * * *", Some("../etc/passwd"), "unknown time zone ../etc/passwd"),
    ];
    for (name, schedule, zone, want) in rows {
        match Schedule::parse(schedule, *zone) {
            Ok(s) => panic!("{name}: {schedule:?} {zone:?} parsed: {s:?}"),
            Err(e) => assert_eq!(e.to_string(), *want, "{name}"),
        }
        if zone.is_none() {
            let e = validate_schedule(schedule).expect_err(name);
            assert_eq!(e.to_string(), *want, "{name}: validate_schedule");
        }
    }
}

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
        "@every +2m",
        "59 23 31 2 *",
        "1,,2 * * * *",
        "  0   *  * * *  ",
    ] {
        assert_eq!(validate_schedule(s), Ok(()), "{s}");
    }
    for zone in [
        "UTC",
        "Etc/UTC",
        "Europe/Paris",
        "America/Argentina/Buenos_Aires",
    ] {
        assert!(Schedule::parse("* * * * *", Some(zone)).is_ok(), "{zone}");
    }
}

#[test]
fn times_between_returns_the_most_recent_slots_oldest_first() {
    #[rustfmt::skip]
    let rows: &[BetweenRow] = &[
        // name, schedule, zone, after, until, limit, times, more
        ("all hourly slots", "0 * * * *", UTC, "2026-12-05T10:00:00Z", "2026-12-05T13:30:00Z", 10,
            &["2026-12-05T11:00:00Z", "2026-12-05T12:00:00Z", "2026-12-05T13:00:00Z"], false),
        ("until is included", "0 * * * *", UTC, "2026-12-05T10:00:00Z", "2026-12-05T12:00:00Z", 10,
            &["2026-12-05T11:00:00Z", "2026-12-05T12:00:00Z"], false),
        ("the most recent two", "0 * * * *", UTC, "2026-12-05T10:00:00Z", "2026-12-05T13:30:00Z", 2,
            &["2026-12-05T12:00:00Z", "2026-12-05T13:00:00Z"], true),
        ("exactly the limit: nothing left out", "0 * * * *", UTC, "2026-12-05T10:00:00Z", "2026-12-05T13:30:00Z", 3,
            &["2026-12-05T11:00:00Z", "2026-12-05T12:00:00Z", "2026-12-05T13:00:00Z"], false),
        ("limit 0 only says whether any", "0 * * * *", UTC, "2026-12-05T10:00:00Z", "2026-12-05T13:30:00Z", 0, &[], true),
        ("limit 0 and none", "0 * * * *", UTC, "2026-12-05T10:00:00Z", "2026-12-05T10:30:00Z", 0, &[], false),
        ("an empty interval", "* * * * *", UTC, "2026-12-05T10:00:00Z", "2026-12-05T10:00:00Z", 5, &[], false),
        ("until before after", "* * * * *", UTC, "2026-12-05T10:00:00Z", "2026-12-05T09:00:00Z", 5, &[], false),
        ("a year of minutes, latest only", "* * * * *", UTC, "2025-12-05T10:00:00Z", "2026-12-05T10:00:30Z", 1,
            &["2026-12-05T10:00:00Z"], true),
        ("never fires", "59 23 31 2 *", UTC, "2020-01-01T00:00:00Z", "2026-12-05T10:00:00Z", 5, &[], false),
        ("NY fall back: 01:30 twice", "30 1 * * *", NY, "2026-10-31T12:00:00-04:00", "2026-11-02T00:00:00-05:00", 10,
            &["2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00"], false),
        ("NY fall back: the later 01:30 is the latest", "30 1 * * *", NY, "2026-10-31T12:00:00-04:00", "2026-11-02T00:00:00-05:00", 1,
            &["2026-11-01T01:30:00-05:00"], true),
        ("NY fall back: until between the two", "30 1 * * *", NY, "2026-10-31T12:00:00-04:00", "2026-11-01T01:00:00-05:00", 5,
            &["2026-11-01T01:30:00-04:00"], false),
        ("NY spring forward: 02:30 missing", "30 2 * * *", NY, "2026-03-06T12:00:00-05:00", "2026-03-09T12:00:00-04:00", 10,
            &["2026-03-07T02:30:00-05:00", "2026-03-09T02:30:00-04:00"], false),
        ("Lord Howe fall back by 30 min", "*/15 * * * *", LORD_HOWE, "2026-04-05T01:00:00+11:00", "2026-04-05T02:00:00+10:30", 10,
            &["2026-04-05T01:15:00+11:00", "2026-04-05T01:30:00+11:00", "2026-04-05T01:45:00+11:00",
              "2026-04-05T01:30:00+10:30", "2026-04-05T01:45:00+10:30", "2026-04-05T02:00:00+10:30"], false),
        ("London fall back, latest two", "30 1 * * *", LONDON, "2026-10-20T00:00:00Z", "2026-10-25T12:00:00Z", 2,
            &["2026-10-25T01:30:00+01:00", "2026-10-25T01:30:00+00:00"], true),
        ("@every counts from the anchor", "@every 10m", UTC, "2026-12-05T10:00:30.25Z", "2026-12-05T11:00:30Z", 3,
            &["2026-12-05T10:40:30Z", "2026-12-05T10:50:30Z", "2026-12-05T11:00:30Z"], true),
        ("@every all slots", "@every 25m", UTC, "2026-12-05T10:00:00Z", "2026-12-05T11:00:00Z", 10,
            &["2026-12-05T10:25:00Z", "2026-12-05T10:50:00Z"], false),
        ("@every before the first slot", "@every 1h", UTC, "2026-12-05T10:00:00Z", "2026-12-05T10:59:59Z", 10, &[], false),
        ("@every one second for ten years, latest only", "@every 1s", UTC, "2016-12-05T10:00:00Z", "2026-12-05T10:00:00Z", 1,
            &["2026-12-05T10:00:00Z"], true),
    ];
    for (name, schedule, zone, after, until, limit, want, want_more) in rows {
        let (got, more) = parse(schedule, *zone).times_between(t(after), t(until), *limit);
        let want: Vec<_> = want.iter().map(|w| t(w)).collect();
        assert_eq!((got, more), (want, *want_more), "{name}");
    }
}

/// The fire times by definition: every minute whose wall-clock time in the zone matches,
/// found by trying each minute in turn.
fn brute_force(s: &Schedule, after: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let Kind::Cron(f) = &s.kind else {
        unreachable!("cron schedules only")
    };
    let mut out = Vec::new();
    let mut m = floor_second(after).with_second(0).unwrap_or(after) + MINUTE;
    while m <= until {
        if f.matches(s.local(m)) {
            out.push(m);
        }
        m += MINUTE;
    }
    out
}

/// next_after and times_between agree with trying every minute, around each DST change
/// (the search's shortcuts around fall-backs are where it could go wrong).
#[test]
fn fire_times_agree_with_trying_every_minute_around_dst_changes() {
    let schedules = [
        "* * * * *",
        "*/7 * * * *",
        "0,30 * * * *",
        "15,45 1,2 * * *",
        "59 0-3 * * *",
        "0 2 * * *",
        "30 1 * * 0",
        "0 0 * * *",
    ];
    let days = [
        (NY, ["2026-03-07T22:00:00Z", "2026-10-31T22:00:00Z"]),
        (LONDON, ["2026-03-28T18:00:00Z", "2026-10-24T18:00:00Z"]),
        (LORD_HOWE, ["2026-10-03T10:00:00Z", "2026-04-04T10:00:00Z"]),
        (TOKYO, ["2026-12-05T10:00:00Z", "2026-06-01T10:00:00Z"]),
    ];
    for schedule in schedules {
        for (zone, starts) in days {
            let s = parse(schedule, zone);
            for start in starts {
                let start = t(start);
                let until = start + TimeDelta::hours(10);
                let want = brute_force(&s, start, until);
                // Every 13 minutes of the window, plus a few seconds, as `after`.
                let afters = (0..)
                    .map(|k| start + TimeDelta::seconds(k * (13 * 60 + 7)))
                    .take_while(|a| *a < until);
                for (k, after) in afters.enumerate() {
                    let here = format!("{schedule} {zone:?} after {after}");
                    let next = want.iter().copied().find(|w| *w > after);
                    if next.is_some() {
                        assert_eq!(s.next_after(after), next, "{here}");
                    }
                    let between: Vec<_> = want.iter().copied().filter(|w| *w > after).collect();
                    // The whole list now and then (it is the slow part in a debug build).
                    if k % 4 == 0 {
                        let (got, more) = s.times_between(after, until, usize::MAX);
                        assert_eq!((&got, more), (&between, false), "{here}");
                    }
                    let (got, more) = s.times_between(after, until, 2);
                    let tail = &between[between.len().saturating_sub(2)..];
                    assert_eq!((&got[..], more), (tail, between.len() > 2), "{here}");
                }
            }
        }
    }
}

#[test]
fn a_schedule_is_shared_between_threads() {
    fn shared<T: Clone + std::fmt::Debug + Send + Sync>() {}
    shared::<Schedule>();
}
