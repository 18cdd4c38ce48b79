//! Sets of completion indexes in Kubernetes' compressed interval form (`"1,3-5,7"`), as in
//! `status.completedIndexes`, `status.failedIndexes` and `successPolicy.rules[].succeededIndexes`.

use std::collections::BTreeSet;

/// A set of completion indexes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Indexes(BTreeSet<i32>);

impl Indexes {
    /// Parses `"1,3-5,7"`; indexes at or above `limit` (the completions) and malformed parts
    /// are dropped, as Kubernetes does when reading its own status back.
    pub fn parse(text: &str, limit: i32) -> Indexes {
        let mut set = BTreeSet::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => (a.trim().parse::<i32>(), b.trim().parse::<i32>()),
                None => (part.parse::<i32>(), part.parse::<i32>()),
            };
            if let (Ok(lo), Ok(hi)) = (lo, hi)
                && lo >= 0
                && lo <= hi
            {
                set.extend(lo..=hi.min(limit.saturating_sub(1)));
            }
        }
        Indexes(set)
    }

    /// The compressed form: consecutive runs of three or more as `a-b`, pairs as `a,b`.
    pub fn format(&self) -> String {
        let mut out: Vec<String> = Vec::new();
        let mut iter = self.0.iter().copied().peekable();
        while let Some(start) = iter.next() {
            let mut end = start;
            while iter.peek() == Some(&(end + 1)) {
                end += 1;
                iter.next();
            }
            match end - start {
                0 => out.push(start.to_string()),
                1 => {
                    out.push(start.to_string());
                    out.push(end.to_string());
                }
                _ => out.push(format!("{start}-{end}")),
            }
        }
        out.join(",")
    }

    pub fn contains(&self, i: i32) -> bool {
        self.0.contains(&i)
    }

    /// Adds `i`; true when it was new.
    pub fn insert(&mut self, i: i32) -> bool {
        self.0.insert(i)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = i32> + '_ {
        self.0.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_and_format_like_kubernetes() {
        let table = [
            ("", 10, ""),
            ("0", 10, "0"),
            ("0,1", 10, "0,1"),
            ("0-2", 10, "0-2"),
            ("1,3-5,7", 10, "1,3-5,7"),
            ("3,1,2", 10, "1-3"),
            ("5-9", 7, "5,6"),
            ("x,2,4-3", 10, "2"),
            (" 1 , 2 ", 10, "1,2"),
        ];
        for (text, limit, want) in table {
            assert_eq!(
                Indexes::parse(text, limit).format(),
                want,
                "{text:?} < {limit}"
            );
        }
    }

    #[test]
    fn insert_reports_new_indexes_only() {
        let mut s = Indexes::default();
        assert!(s.insert(4));
        assert!(!s.insert(4));
        assert!(s.insert(5));
        assert_eq!((s.len(), s.contains(5), s.contains(3)), (2, true, false));
    }
}
