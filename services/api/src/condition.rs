//! Conditions (`status.conditions[]`) of pods, nodes and Jobs, set the one way Kubernetes does:
//! by type, keeping `lastTransitionTime` while the status stays the same.

use crate::v1;

/// Sets `new` among `conditions` by its type; returns whether anything changed.
///
/// A condition whose status, reason and message are unchanged is left as it is (no write
/// needed). Otherwise `new` replaces it, but keeps the old `lastTransitionTime` when only the
/// reason or message changed: the time says when the status last flipped. `new` carries the
/// transition time to use when it does flip (the caller's "now").
pub fn set_condition(conditions: &mut Vec<v1::Condition>, new: v1::Condition) -> bool {
    match conditions.iter_mut().find(|c| c.r#type == new.r#type) {
        Some(c) if c.status == new.status && c.reason == new.reason && c.message == new.message => {
            false
        }
        Some(c) => {
            let kept =
                (c.status == new.status).then(|| std::mem::take(&mut c.last_transition_time));
            *c = new;
            if let Some(t) = kept {
                c.last_transition_time = t;
            }
            true
        }
        None => {
            conditions.push(new);
            true
        }
    }
}

/// The condition of type `ty`, if set.
pub fn find_condition<'a>(conditions: &'a [v1::Condition], ty: &str) -> Option<&'a v1::Condition> {
    conditions.iter().find(|c| c.r#type == ty)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(ty: &str, status: &str, reason: &str, at: &str) -> v1::Condition {
        v1::Condition {
            r#type: ty.into(),
            status: status.into(),
            reason: reason.into(),
            last_transition_time: at.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_condition_keeps_its_transition_time_until_its_status_flips() {
        // (name, before, new, changed, after)
        let table = [
            (
                "added",
                vec![],
                cond("Ready", "True", "", "t2"),
                true,
                vec![cond("Ready", "True", "", "t2")],
            ),
            (
                "unchanged: not rewritten",
                vec![cond("Ready", "True", "", "t1")],
                cond("Ready", "True", "", "t2"),
                false,
                vec![cond("Ready", "True", "", "t1")],
            ),
            (
                "new reason, same status: time kept",
                vec![cond("Ready", "False", "A", "t1")],
                cond("Ready", "False", "B", "t2"),
                true,
                vec![cond("Ready", "False", "B", "t1")],
            ),
            (
                "status flips: new time",
                vec![cond("Ready", "False", "A", "t1")],
                cond("Ready", "True", "", "t2"),
                true,
                vec![cond("Ready", "True", "", "t2")],
            ),
            (
                "other types untouched",
                vec![
                    cond("PodScheduled", "True", "", "t0"),
                    cond("Ready", "False", "", "t1"),
                ],
                cond("Ready", "True", "", "t2"),
                true,
                vec![
                    cond("PodScheduled", "True", "", "t0"),
                    cond("Ready", "True", "", "t2"),
                ],
            ),
        ];
        for (name, mut before, new, changed, after) in table {
            assert_eq!(set_condition(&mut before, new), changed, "{name}");
            assert_eq!(before, after, "{name}");
        }
    }
}
