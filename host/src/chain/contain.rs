//! Containment: which events of a step's batch are at fault, found by calls
//! over parts of it. The calls themselves are the caller's: this module only
//! decides which parts to call next, so it is tested with a fake step.
//!
//! A faulting part is split in halves, one level of halves at a time, until
//! the events at fault are alone. Fast containment: when more than three
//! quarters of the parts of a level of four or more fault, up to [`PROBES`]
//! of the events left are tried alone; if half of those fault too, the step
//! faults on most of the batch and the events left are settled at once. The
//! faults one step-batch may take are capped (8·log2(n) + 8) the same way. A
//! single bad event costs what plain bisection costs (one fault a level).

/// Events tried alone when a level of halves faults almost everywhere.
pub const PROBES: usize = 8;

/// What containment found for one step's batch.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Contained {
    /// Events that faulted alone, each with its fault's reason.
    pub dead: Vec<(usize, String)>,
    /// Events never run alone, given up on with this reason (the last
    /// fault's, and why).
    pub settled: Option<(Vec<usize>, String)>,
    /// Calls that faulted.
    pub faults: usize,
}

/// Runs `call` over `idx` and then over parts of the parts that fault.
/// `call` answers `Some(reason)` for a fault; its other answers stand.
pub fn contain<E>(
    idx: &[usize],
    mut call: impl FnMut(&[usize]) -> Result<Option<String>, E>,
) -> Result<Contained, E> {
    let cap = 8 * (usize::BITS - idx.len().leading_zeros()) as usize + 8;
    let mut found = Contained::default();
    let mut level: Vec<Vec<usize>> = vec![idx.to_vec()];
    while !level.is_empty() {
        let parts = level.len();
        let mut next = Vec::new();
        let mut faulted = 0usize;
        let mut last = String::new();
        for part in level {
            let Some(reason) = call(&part)? else {
                continue;
            };
            faulted += 1;
            split(&mut found, part, reason.clone(), &mut next);
            last = reason;
        }
        found.faults += faulted;
        if next.is_empty() {
            break;
        }
        let settle = if parts >= 4 && faulted * 4 > parts * 3 {
            let (tried, failed) = probe(&mut found, &mut next, &mut call, &mut last)?;
            (tried > 0 && failed * 2 >= tried).then(|| {
                format!(
                    "the step faulted on {faulted} of {parts} parts of its batch and on \
                     {failed} of {tried} events tried alone"
                )
            })
        } else {
            None
        };
        let settle = settle.or_else(|| {
            (found.faults >= cap).then(|| {
                format!(
                    "the step faulted {} times on this batch, its cap",
                    found.faults
                )
            })
        });
        if let Some(why) = settle {
            let reason = format!("{last} ({why}; the event was not run alone)");
            found.settled = Some((next.into_iter().flatten().collect(), reason));
            break;
        }
        level = next;
    }
    Ok(found)
}

/// After a fault on `part`: its event dead if it is alone, else its halves
/// queued in `next`.
fn split(found: &mut Contained, part: Vec<usize>, reason: String, next: &mut Vec<Vec<usize>>) {
    if let [i] = part[..] {
        found.dead.push((i, reason));
    } else {
        let (left, right) = part.split_at(part.len() / 2);
        next.push(left.to_vec());
        next.push(right.to_vec());
    }
}

/// Tries up to [`PROBES`] events of `parts`, spread over them, alone (their
/// answers stand) and takes them out of `parts`. Returns how many were tried
/// and how many faulted; `last` gets the last fault's reason.
fn probe<E>(
    found: &mut Contained,
    parts: &mut Vec<Vec<usize>>,
    call: &mut impl FnMut(&[usize]) -> Result<Option<String>, E>,
    last: &mut String,
) -> Result<(usize, usize), E> {
    let left: Vec<usize> = parts.iter().flatten().copied().collect();
    let n = left.len().min(PROBES);
    let picked: Vec<usize> = (0..n).map(|k| left[k * left.len() / n]).collect();
    let mut failed = 0;
    for &i in &picked {
        if let Some(reason) = call(&[i])? {
            failed += 1;
            found.dead.push((i, reason.clone()));
            *last = reason;
        }
    }
    found.faults += failed;
    for part in parts.iter_mut() {
        part.retain(|i| !picked.contains(i));
    }
    parts.retain(|p| !p.is_empty());
    Ok((n, failed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::convert::Infallible;

    /// A step that faults on any part holding one of `bad`; counts its calls.
    fn run(n: usize, bad: &BTreeSet<usize>) -> (Contained, usize) {
        let idx: Vec<usize> = (0..n).collect();
        let mut calls = 0;
        let found = contain(&idx, |part| {
            calls += 1;
            Ok::<_, Infallible>(
                part.iter()
                    .find(|i| bad.contains(i))
                    .map(|i| format!("fault at {i}")),
            )
        })
        .unwrap();
        (found, calls)
    }

    fn dead(found: &Contained) -> BTreeSet<usize> {
        found.dead.iter().map(|(i, _)| *i).collect()
    }

    #[test]
    fn a_clean_batch_is_one_call() {
        let (found, calls) = run(256, &BTreeSet::new());
        assert_eq!(found, Contained::default());
        assert_eq!(calls, 1);
    }

    #[test]
    fn one_bad_event_costs_one_fault_a_level() {
        for (n, at) in [(256, 0), (256, 255), (1000, 517), (5000, 4321)] {
            let (found, _) = run(n, &BTreeSet::from([at]));
            assert_eq!(dead(&found), BTreeSet::from([at]), "n {n}");
            assert!(found.settled.is_none());
            let levels = (usize::BITS - (n - 1).leading_zeros()) as usize + 1;
            assert!(found.faults <= levels, "n {n}: {} faults", found.faults);
        }
    }

    #[test]
    fn each_bad_event_is_found_alone_with_its_own_reason() {
        let bad = BTreeSet::from([3, 40, 41, 200, 511]);
        let (found, _) = run(512, &bad);
        assert_eq!(dead(&found), bad);
        assert!(found.settled.is_none());
        for (i, reason) in &found.dead {
            assert_eq!(reason, &format!("fault at {i}"));
        }
    }

    #[test]
    fn a_batch_that_faults_everywhere_is_settled_fast() {
        let bad: BTreeSet<usize> = (0..5000).collect();
        let (found, calls) = run(5000, &bad);
        let (settled, why) = found.settled.clone().expect("settled");
        // Every event is accounted for once: alone, or settled.
        let mut all: Vec<usize> = settled.clone();
        all.extend(dead(&found));
        all.sort_unstable();
        assert_eq!(all, (0..5000).collect::<Vec<_>>());
        assert!(calls < 40, "{calls} calls");
        assert!(why.contains("tried alone"), "{why}");
        assert!(why.contains("the event was not run alone"), "{why}");
    }

    #[test]
    fn faults_per_batch_are_capped() {
        // 25 scattered bad events: each level faults on about half its parts,
        // never almost all, so only the cap stops the halving.
        let bad: BTreeSet<usize> = (0..25).map(|i| i * 163 % 4096).collect();
        let (found, _) = run(4096, &bad);
        let cap = 8 * 13 + 8;
        assert!(found.faults >= cap, "{}", found.faults);
        assert!(found.faults <= cap + 2 * bad.len(), "{}", found.faults);
        let (settled, why) = found.settled.clone().expect("settled at the cap");
        assert!(why.contains("its cap"), "{why}");
        // No good event is called dead alone, and no bad one escapes.
        assert!(found.dead.iter().all(|(i, _)| bad.contains(i)));
        assert!(bad
            .iter()
            .all(|i| settled.contains(i) || dead(&found).contains(i)));
    }

    #[test]
    fn an_error_from_the_caller_ends_containment() {
        let idx: Vec<usize> = (0..16).collect();
        let mut calls = 0;
        let result = contain(&idx, |_| {
            calls += 1;
            if calls == 3 {
                Err("instance cannot be rebuilt")
            } else {
                Ok(Some("trap".to_owned()))
            }
        });
        assert_eq!(result, Err("instance cannot be rebuilt"));
    }
}
