//! A batch as the host sends it, and one event of it read lazily.

use std::cell::Cell;

use crate::json::{self, Member};
use crate::key::{KeyedTable, Read};
use crate::types::Type;

/// Members of a payload remembered after its first scan; a payload with more
/// falls back to scanning per getter.
const INDEXED: usize = 24;

/// Where each member of the payload is, found by one scan on the first getter
/// call and reused by the next ones.
#[derive(Debug, Clone)]
struct Index {
    /// 0: not built; 1: built; 2: not indexable (use `json::find`).
    state: Cell<u8>,
    len: Cell<u8>,
    members: [Cell<Member>; INDEXED],
}

impl Index {
    fn new() -> Index {
        Index {
            state: Cell::new(0),
            len: Cell::new(0),
            members: [const {
                Cell::new(Member {
                    prefix: 0,
                    name: (0, 0),
                    value: (0, 0),
                })
            }; INDEXED],
        }
    }

    /// The first lookup's scan, kept out of line so that lookups inline small.
    #[inline(never)]
    fn build(&self, obj: &[u8]) {
        match json::index(obj, &self.members) {
            Some(n) => {
                self.len.set(n as u8);
                self.state.set(1);
            }
            None => self.state.set(2),
        }
    }

    #[inline(always)]
    fn find<'a>(&self, obj: &'a [u8], name: &str) -> Option<&'a [u8]> {
        if self.state.get() == 0 {
            self.build(obj);
        }
        if self.state.get() == 2 {
            return json::find(obj, name);
        }
        let name = name.as_bytes();
        let key = json::prefix(name);
        let is = |i: usize| {
            let m = self.members[i].get();
            let (ns, ne) = (m.name.0 as usize, m.name.1 as usize);
            m.prefix == key
                && ne - ns == name.len()
                && (name.len() <= 8 || obj[ns + 8..ne] == name[8..])
        };
        // From the last member (the last duplicate wins), four per loop turn:
        // a guest pays its loop overhead and epoch check per turn.
        let mut i = usize::from(self.len.get());
        let found = loop {
            if i >= 4 {
                if is(i - 1) {
                    break Some(i - 1);
                }
                if is(i - 2) {
                    break Some(i - 2);
                }
                if is(i - 3) {
                    break Some(i - 3);
                }
                if is(i - 4) {
                    break Some(i - 4);
                }
                i -= 4;
            } else {
                if i > 2 && is(2) {
                    break Some(2);
                }
                if i > 1 && is(1) {
                    break Some(1);
                }
                if i > 0 && is(0) {
                    break Some(0);
                }
                break None;
            }
        }?;
        let m = self.members[found].get();
        Some(&obj[m.value.0 as usize..m.value.1 as usize])
    }
}

/// One partition's events, in columns, exactly as they cross the boundary:
/// event `i`'s payload is `payloads[payload_ends[i-1]..payload_ends[i]]`.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    pub topic: &'a str,
    pub payloads: &'a [u8],
    pub payload_ends: &'a [u32],
    pub keys: &'a [u8],
    pub key_ends: &'a [u32],
    /// Per event, the fields earlier steps set, as one JSON object (or empty).
    pub fields: &'a [u8],
    pub field_ends: &'a [u32],
    pub timestamps_ms: &'a [i64],
    pub partitions: &'a [i32],
    pub offsets: &'a [i64],
}

fn item<'a>(bytes: &'a [u8], ends: &[u32], i: usize) -> &'a [u8] {
    let start = if i == 0 { 0 } else { ends[i - 1] as usize };
    let end = ends.get(i).map_or(start, |&e| e as usize);
    bytes.get(start..end).unwrap_or_default()
}

impl<'a> Batch<'a> {
    /// How many events the batch holds.
    pub fn len(&self) -> usize {
        self.payload_ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.payload_ends.is_empty()
    }

    /// The raw JSON of event `i`'s field `name`, as an [`Event`] reads it, by
    /// one scan (for a single field, cheaper than an event's index).
    pub(crate) fn raw(&self, i: usize, name: &str) -> Option<&'a [u8]> {
        Object(item(self.fields, self.field_ends, i))
            .raw(name)
            .or_else(|| Object(item(self.payloads, self.payload_ends, i)).raw(name))
    }

    /// Event `i`, with no lookups prefetched.
    pub fn event(&self, i: usize) -> Event<'a> {
        self.event_with(i, &[])
    }

    pub(crate) fn event_with(&self, i: usize, lookups: &'a [Prefetched]) -> Event<'a> {
        Event {
            topic: self.topic,
            payload: Object(item(self.payloads, self.payload_ends, i)),
            key: item(self.keys, self.key_ends, i),
            fields: Object(item(self.fields, self.field_ends, i)),
            timestamp_ms: self.timestamps_ms.get(i).copied().unwrap_or(-1),
            partition: self.partitions.get(i).copied().unwrap_or(-1),
            offset: self.offsets.get(i).copied().unwrap_or(-1),
            index: i,
            lookups,
            members: Index::new(),
        }
    }
}

/// A JSON object read in place: each lookup scans for its member, nothing is
/// parsed up front.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Object<'a>(pub(crate) &'a [u8]);

impl<'a> Object<'a> {
    /// The raw JSON of member `name`.
    pub(crate) fn raw(&self, name: &str) -> Option<&'a [u8]> {
        if self.0.is_empty() {
            return None;
        }
        json::find(self.0, name)
    }

    /// Whether the bytes are a JSON object.
    pub(crate) fn is_object(&self) -> bool {
        self.0
            .iter()
            .find(|c| !c.is_ascii_whitespace())
            .is_some_and(|&c| c == b'{')
    }
}

/// One event: its payload, the fields earlier steps set (which win over the
/// payload's members of the same name) and its Kafka coordinates. The first
/// getter scans the payload once and remembers where each member is.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    topic: &'a str,
    payload: Object<'a>,
    key: &'a [u8],
    fields: Object<'a>,
    timestamp_ms: i64,
    partition: i32,
    offset: i64,
    index: usize,
    lookups: &'a [Prefetched],
    members: Index,
}

impl<'a> Event<'a> {
    /// The raw JSON of field `name`: set by an earlier step, else the payload's.
    #[inline(always)]
    pub(crate) fn raw(&self, name: &str) -> Option<&'a [u8]> {
        self.fields
            .raw(name)
            .or_else(|| self.members.find(self.payload.0, name))
    }

    /// Field `key` as its declared type: `event.get(reads::ts)` is an
    /// `Option<i64>` for `reads(ts: int)`. `None` when the field is absent,
    /// null or of another type.
    #[inline(always)]
    pub fn get<T: Type>(&self, key: Read<T>) -> Option<T::Value<'a>> {
        self.raw(key.name()).and_then(T::decode)
    }

    /// Whether field `key` is present and not `null`.
    #[inline(always)]
    pub fn has<T>(&self, key: Read<T>) -> bool {
        self.raw(key.name()).is_some_and(|r| r != b"null")
    }

    /// Whether the payload is a JSON object.
    pub fn is_object(&self) -> bool {
        self.payload.is_object()
    }

    /// The Kafka key (empty when the record had none).
    pub fn key(&self) -> &'a [u8] {
        self.key
    }

    pub fn topic(&self) -> &'a str {
        self.topic
    }

    /// Kafka's timestamp in milliseconds since the Unix epoch (-1: none).
    pub fn timestamp_ms(&self) -> i64 {
        self.timestamp_ms
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// The answer of lookup table `table` for this event's key field, fetched
    /// for the whole batch in one call before the plugin function ran:
    /// `event.lookup(lookups::categories)` for
    /// `#[enricher(lookups(categories = "pin_id"), ...)]`.
    ///
    /// # Panics
    /// If the event does not come from the plugin's batch loop (an event made
    /// with [`Batch::event`] has no lookups).
    #[inline]
    pub fn lookup(&self, table: KeyedTable) -> Option<&'a str> {
        match self.lookups.get(table.index()) {
            Some(t) => t.get(self.index),
            None => panic!(
                "lookup table `{}` was not looked up for this event: read it from the event \
                 the plugin function is given",
                table.name()
            ),
        }
    }
}

/// One lookup table's answers for a whole batch; a batch's tables are in the
/// order of their [`KeyedTable`] indices.
#[derive(Debug, Clone, Default)]
pub struct Prefetched {
    pub(crate) values: Vec<u8>,
    pub(crate) ends: Vec<u32>,
    pub(crate) found: Vec<bool>,
}

impl Prefetched {
    fn get(&self, i: usize) -> Option<&str> {
        if !self.found.get(i).copied().unwrap_or(false) {
            return None;
        }
        crate::text::utf8(item(&self.values, &self.ends, i))
    }
}

#[cfg(test)]
mod tests {
    use crate::key::Read;
    use crate::testing::TestBatch;
    use crate::types::{Any, Boolean, Float, Int, Json, Text};

    fn key<T>(name: &'static str) -> Read<T> {
        Read::__declared(name)
    }

    #[test]
    fn fields_of_earlier_steps_win_over_the_payload() {
        let batch = TestBatch::new(&[r#"{"a":1,"b":"x"}"#]).with_fields(0, r#"{"a":2}"#);
        let e = batch.view().event(0);
        assert_eq!(e.get(key::<Int>("a")), Some(2));
        assert_eq!(e.get(key::<Text>("b")).as_deref(), Some("x"));
        assert!(!e.has(key::<Any>("c")));
        assert_eq!(e.offset(), 0);
        assert_eq!(batch.view().raw(0, "a"), Some(&b"2"[..]));
        assert_eq!(batch.view().raw(0, "b"), Some(&b"\"x\""[..]));
        assert_eq!(batch.view().raw(0, "c"), None);
    }

    #[test]
    fn a_read_gives_its_type_or_none() {
        let payload = r#"{"t":"x","i":-3,"f":2.5,"fi":2,"b":true,"j":{"k":[1]},"n":null}"#;
        let batch = TestBatch::new(&[payload]);
        let e = batch.view().event(0);
        assert_eq!(e.get(key::<Text>("t")).as_deref(), Some("x"));
        assert_eq!(e.get(key::<Int>("i")), Some(-3));
        assert_eq!(e.get(key::<Float>("f")), Some(2.5));
        assert_eq!(e.get(key::<Float>("fi")), Some(2.0));
        assert_eq!(e.get(key::<Boolean>("b")), Some(true));
        assert_eq!(
            e.get(key::<Json>("j")).map(|j| j.as_bytes()),
            Some(&br#"{"k":[1]}"#[..])
        );
        assert_eq!(
            e.get(key::<Json>("i")).map(|j| j.as_bytes()),
            Some(&b"-3"[..])
        );
        // Another type, null or absent: none.
        assert_eq!(e.get(key::<Int>("t")), None);
        assert_eq!(e.get(key::<Int>("f")), None);
        assert_eq!(e.get(key::<Text>("b")), None);
        assert_eq!(e.get(key::<Boolean>("i")), None);
        assert_eq!(e.get(key::<Json>("n")), None);
        assert_eq!(e.get(key::<Text>("absent")), None);
        assert!(e.has(key::<Any>("j")) && !e.has(key::<Any>("n")));
    }

    #[test]
    fn members_are_found_by_their_whole_name() {
        let payload = r#"{"user":1,"user_id":2,"user_agent":"a","user_agentX":"b","u":3,"":4}"#;
        let batch = TestBatch::new(&[payload]);
        let e = batch.view().event(0);
        assert_eq!(e.get(key::<Int>("user")), Some(1));
        assert_eq!(e.get(key::<Int>("user_id")), Some(2));
        assert_eq!(e.get(key::<Text>("user_agent")).as_deref(), Some("a"));
        assert_eq!(e.get(key::<Text>("user_agentX")).as_deref(), Some("b"));
        assert_eq!(e.get(key::<Int>("u")), Some(3));
        assert_eq!(e.get(key::<Int>("")), Some(4));
        for absent in ["use", "user_", "user_agen", "user_agentXY", "U", "user\0"] {
            assert!(!e.has(key::<Any>(absent)), "{absent}");
        }
        // The last member, its name ending where the object nearly does.
        let batch = TestBatch::new(&[r#"{"a":1,"ts":2}"#]);
        assert_eq!(batch.view().event(0).get(key::<Int>("ts")), Some(2));
    }
}
