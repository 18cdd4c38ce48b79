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
