//! Small formatting helpers shared by the printers and `describe`: kubectl's human
//! durations and ages, label and selector formatting, timestamps.

use std::collections::BTreeMap;

use bosun_api::v1;
use chrono::{DateTime, Utc};

/// Parses an RFC3339 timestamp as stored on objects; `None` when empty or malformed.
pub fn parse_time(ts: &str) -> Option<DateTime<Utc>> {
    if ts.is_empty() {
        return None;
    }
    DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// kubectl's `duration.HumanDuration`: `45s`, `3m2s`, `15m`, `5h4m`, `20h`, `2d3h`, `30d`, `2y5d`.
pub fn human_duration(d: chrono::Duration) -> String {
    let seconds = d.num_seconds();
    // Up to two seconds in the future counts as "now" (clock skew between machines).
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// kubectl's `translateTimestampSince`: the age of `ts` at `now`, `<unknown>` when unset.
pub fn age(ts: &str, now: DateTime<Utc>) -> String {
    match parse_time(ts) {
        Some(t) => human_duration(now - t),
        None => "<unknown>".to_string(),
    }
}

/// How long until `ts` at `now`, as `in 42s` (bosun's NEXT SCHEDULE column); `in 0s` when it
/// is already due, `<none>` when unset.
pub fn until(ts: &str, now: DateTime<Utc>) -> String {
    match parse_time(ts) {
        Some(t) => format!(
            "in {}",
            human_duration((t - now).max(chrono::Duration::zero()))
        ),
        None => "<none>".to_string(),
    }
}

/// `k=v,k2=v2` (sorted), `<none>` when empty: kubectl's `labels.FormatLabels`.
pub fn format_labels(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return "<none>".to_string();
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A `LabelSelector` in kubectl's string form (`app=x,env in (a,b),!legacy`), `<none>` when
/// it selects nothing in particular.
pub fn format_selector(sel: Option<&v1::LabelSelector>) -> String {
    let Some(sel) = sel else {
        return "<none>".to_string();
    };
    let mut parts: Vec<(String, String)> = sel
        .match_labels
        .iter()
        .map(|(k, v)| (k.clone(), format!("{k}={v}")))
        .collect();
    for e in &sel.match_expressions {
        let values = e.values.join(",");
        let text = match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            other => format!("{} {other} ({values})", e.key),
        };
        parts.push((e.key.clone(), text));
    }
    if parts.is_empty() {
        return "<none>".to_string();
    }
    // Requirements print sorted by key, as Kubernetes' selector String() does.
    parts.sort_by(|a, b| a.0.cmp(&b.0));
    parts.into_iter().map(|p| p.1).collect::<Vec<_>>().join(",")
}

/// RFC1123 with a numeric zone, as `kubectl describe` prints times.
pub fn describe_time(ts: &str) -> String {
    match DateTime::parse_from_rfc3339(ts) {
        Ok(t) => t.format("%a, %d %b %Y %H:%M:%S %z").to_string(),
        Err(_) => ts.to_string(),
    }
}

/// Lays rows out in columns separated by three spaces, like kubectl's tabwriter.
pub fn render_table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] - cell.chars().count() + 3;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_kubectl() {
        let table = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (182, "3m2s"),
            (599, "9m59s"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (5 * 3600 + 4 * 60, "5h4m"),
            (20 * 3600, "20h"),
            (47 * 3600 + 59 * 60, "47h"),
            (51 * 3600, "2d3h"),
            (72 * 3600, "3d"),
            (30 * 86400, "30d"),
            (729 * 86400, "729d"),
            (735 * 86400, "2y5d"),
            (365 * 3 * 86400, "3y"),
            (365 * 9 * 86400, "9y"),
        ];
        for (secs, want) in table {
            assert_eq!(
                human_duration(chrono::Duration::seconds(secs)),
                want,
                "{secs}s"
            );
        }
    }

    #[test]
    fn age_of_an_unset_timestamp_is_unknown() {
        let now = parse_time("2024-01-01T00:10:00Z").unwrap();
        assert_eq!(age("", now), "<unknown>");
        assert_eq!(age("2024-01-01T00:00:00Z", now), "10m");
    }

    #[test]
    fn selectors_print_sorted_with_set_operators() {
        let sel = v1::LabelSelector {
            match_labels: [("b".to_string(), "2".to_string())].into(),
            match_expressions: vec![
                v1::LabelSelectorRequirement {
                    key: "a".into(),
                    operator: "In".into(),
                    values: vec!["x".into(), "y".into()],
                },
                v1::LabelSelectorRequirement {
                    key: "c".into(),
                    operator: "DoesNotExist".into(),
                    values: vec![],
                },
            ],
        };
        assert_eq!(format_selector(Some(&sel)), "a in (x,y),b=2,!c");
        assert_eq!(format_selector(None), "<none>");
        assert_eq!(
            format_selector(Some(&v1::LabelSelector::default())),
            "<none>"
        );
    }

    #[test]
    fn tables_align_columns_three_spaces_apart() {
        let rows = vec![
            vec!["NAME".to_string(), "AGE".to_string()],
            vec!["a-long-name".to_string(), "5s".to_string()],
        ];
        assert_eq!(render_table(&rows), "NAME          AGE\na-long-name   5s\n");
    }

    #[test]
    fn describe_times_use_rfc1123_with_a_numeric_zone() {
        assert_eq!(
            describe_time("2024-03-04T05:06:07Z"),
            "Mon, 04 Mar 2024 05:06:07 +0000"
        );
    }
}
