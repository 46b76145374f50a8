//! The batch loops behind the attribute macros. Public for the generated code
//! and for native baselines; plugin code does not call these.

use std::cell::RefCell;

use crate::config::{Config, FromConfig};
use crate::event::{Batch, Event, Prefetched};
use crate::fields::Fields;
use crate::{Additions, Failure, FieldSpec, Rejection, RetryLater, Verdict};

#[cfg(target_arch = "wasm32")]
pub use wit_bindgen;

/// Parses the step's configuration into the plugin's state; unknown keys are
/// errors. A value naming a field may name one of `reads` only.
pub fn init<C: FromConfig>(
    pairs: Vec<(String, String)>,
    reads: &'static [FieldSpec],
) -> Result<C, String> {
    let mut config = Config::new(pairs);
    let c = crate::key::with_declared(reads, || C::from_config(&mut config))
        .map_err(|e| e.to_string())?;
    config.finish().map_err(|e| e.to_string())?;
    Ok(c)
}

/// What a filter function may return.
#[diagnostic::on_unimplemented(
    message = "a filter returns `bool`, `Verdict` or `Result<_, E>`, not `{Self}`",
    label = "not a verdict"
)]
pub trait IntoVerdict {
    fn into_verdict(self) -> Result<Verdict, Failure>;
}

impl IntoVerdict for bool {
    fn into_verdict(self) -> Result<Verdict, Failure> {
        Ok(if self { Verdict::Keep } else { Verdict::Drop })
    }
}

impl IntoVerdict for Verdict {
    fn into_verdict(self) -> Result<Verdict, Failure> {
        Ok(self)
    }
}

impl<T: IntoVerdict, E: Into<Failure>> IntoVerdict for Result<T, E> {
    fn into_verdict(self) -> Result<Verdict, Failure> {
        self.map_err(Into::into).and_then(IntoVerdict::into_verdict)
    }
}

/// What an enricher function may return.
#[diagnostic::on_unimplemented(
    message = "an enricher returns nothing or `Result<(), E>`, not `{Self}`",
    label = "not an enricher's result"
)]
pub trait IntoDone {
    fn into_done(self) -> Result<(), Failure>;
}

impl IntoDone for () {
    fn into_done(self) -> Result<(), Failure> {
        Ok(())
    }
}

impl<E: Into<Failure>> IntoDone for Result<(), E> {
    fn into_done(self) -> Result<(), Failure> {
        self.map_err(Into::into)
    }
}

thread_local! {
    static KEYS: RefCell<(Vec<u8>, Vec<u32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Looks up each declared (table, key field) for the whole batch, one host call
/// per table. A key field that is a string is looked up by its text, a number
/// by its digits; an absent or null one by the empty key.
pub fn prefetch(batch: &Batch, lookups: &[(&str, &str)]) -> Vec<Prefetched> {
    let n = batch.len();
    KEYS.with_borrow_mut(|(keys, ends)| {
        lookups
            .iter()
            .map(|&(table, field)| {
                keys.clear();
                ends.clear();
                for i in 0..n {
                    // One member wanted: a plain scan, no index to build.
                    if let Some(raw) = batch.raw(i, field) {
                        match crate::json::as_str(raw) {
                            Some(s) => keys.extend_from_slice(s.as_bytes()),
                            None if raw != b"null" => keys.extend_from_slice(raw),
                            None => {}
                        }
                    }
                    ends.push(keys.len() as u32);
                }
                let (values, value_ends, found) = crate::host::lookup_many(table, keys, ends);
                let ok = value_ends.len() == n && found.len() == n;
                Prefetched {
                    values,
                    ends: if ok { value_ends } else { vec![0; n] },
                    found: if ok { found } else { vec![false; n] },
                }
            })
            .collect()
    })
}

/// Runs a filter function over a batch: one verdict per event, rejections by
/// index. `state` is the plugin's, lent to the function for each event.
pub fn run_filter<C, F, R>(
    batch: &Batch,
    state: &mut C,
    lookups: &[(&str, &str)],
    mut f: F,
) -> Result<(Vec<bool>, Vec<Rejection>), RetryLater>
where
    F: FnMut(&Event, &mut C) -> R,
    R: IntoVerdict,
{
    let tables = prefetch(batch, lookups);
    let n = batch.len();
    let mut keep = Vec::with_capacity(n);
    let mut rejected = Vec::new();
    for i in 0..n {
        let event = batch.event_with(i, &tables);
        match f(&event, state).into_verdict() {
            Ok(Verdict::Keep) => keep.push(true),
            Ok(Verdict::Drop) => keep.push(false),
            Ok(Verdict::Reject(reason)) | Err(Failure::Reject(reason)) => {
                keep.push(false);
                rejected.push(Rejection {
                    index: i as u32,
                    reason,
                });
            }
            Err(Failure::RetryLater(reason)) => return Err(RetryLater(reason)),
        }
    }
    Ok((keep, rejected))
}

/// Runs an enricher function over a batch: per event one JSON object of the
/// fields it set, written back to back into one buffer. `writes` is how many
/// fields it declares, for the buffer's first size.
pub fn run_enricher<C, F, R>(
    batch: &Batch,
    state: &mut C,
    lookups: &[(&str, &str)],
    writes: usize,
    mut f: F,
) -> Result<Additions, RetryLater>
where
    F: FnMut(&Event, &mut C, &mut Fields) -> R,
    R: IntoDone,
{
    let tables = prefetch(batch, lookups);
    let n = batch.len();
    let mut out = Additions {
        fields: Vec::with_capacity(n * 16 * writes.max(1)),
        field_ends: Vec::with_capacity(n),
        rejected: Vec::new(),
    };
    for i in 0..n {
        let event = batch.event_with(i, &tables);
        let start = out.fields.len();
        let mut fields = Fields::new(&mut out.fields);
        let done = f(&event, state, &mut fields).into_done();
        fields.finish();
        match done {
            Ok(()) => {}
            Err(Failure::RetryLater(reason)) => return Err(RetryLater(reason)),
            Err(Failure::Reject(reason)) => {
                out.fields.truncate(start);
                out.rejected.push(Rejection {
                    index: i as u32,
                    reason,
                });
            }
        }
        out.field_ends.push(out.fields.len() as u32);
    }
    Ok(out)
}
