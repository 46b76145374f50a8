//! Lookup tables read from a MaxMind DB file (`[lookup.NAME] mmdb = "..."`):
//! an IP address as the key, the selected members of its record as a JSON
//! object as the value.
//!
//! The file is read once by the host and shared by every instance of every
//! step granted the table, instead of each instance reading its own copy into
//! its linear memory (a GeoLite2 City file is 56 MB).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// One member of a record, borrowing its strings from the database.
#[derive(Debug, Clone, PartialEq)]
enum Node<'de> {
    Map(Vec<(&'de str, Node<'de>)>),
    List(Vec<Node<'de>>),
    Text(&'de str),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Bool(bool),
    /// What JSON cannot hold exactly (bytes, 128-bit integers): left out.
    Other,
}

impl<'de> Deserialize<'de> for Node<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a MaxMind DB value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Node<'de>, E> {
                Ok(Node::Text(v))
            }
            fn visit_str<E>(self, _: &str) -> Result<Node<'de>, E> {
                Ok(Node::Other)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Node<'de>, E> {
                Ok(Node::Bool(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Node<'de>, E> {
                Ok(Node::Unsigned(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Node<'de>, E> {
                Ok(Node::Signed(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Node<'de>, E> {
                Ok(Node::Float(v))
            }
            fn visit_u128<E>(self, v: u128) -> Result<Node<'de>, E> {
                Ok(u64::try_from(v).map_or(Node::Other, Node::Unsigned))
            }
            fn visit_i128<E>(self, v: i128) -> Result<Node<'de>, E> {
                Ok(i64::try_from(v).map_or(Node::Other, Node::Signed))
            }
            fn visit_bytes<E>(self, _: &[u8]) -> Result<Node<'de>, E> {
                Ok(Node::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
                let mut items = Vec::new();
                while let Some(n) = seq.next_element()? {
                    items.push(n);
                }
                Ok(Node::List(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
                let mut members = Vec::new();
                while let Some((k, v)) = map.next_entry::<&'de str, Node<'de>>()? {
                    members.push((k, v));
                }
                Ok(Node::Map(members))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Node<'de> {
    /// The member at `path` (map keys, or list indexes as decimal numbers).
    fn at(&self, path: &[String]) -> Option<&Node<'de>> {
        let mut node = self;
        for step in path {
            node = match node {
                Node::Map(members) => &members.iter().find(|(k, _)| *k == step.as_str())?.1,
                Node::List(items) => items.get(step.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// Appends the node as JSON; false (and nothing written) for [`Node::Other`].
    fn write_json(&self, out: &mut Vec<u8>) -> bool {
        use std::io::Write as _;
        match self {
            Node::Text(s) => {
                // Writing into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, s);
            }
            Node::Unsigned(v) => {
                let _ = write!(out, "{v}");
            }
            Node::Signed(v) => {
                let _ = write!(out, "{v}");
            }
            Node::Float(v) if v.is_finite() => {
                let _ = write!(out, "{v}");
            }
            Node::Float(_) | Node::Other => return false,
            Node::Bool(v) => out.extend_from_slice(if *v { b"true" } else { b"false" }),
            Node::List(items) => {
                out.push(b'[');
                let mut first = true;
                for item in items {
                    let mark = out.len();
                    if !first {
                        out.push(b',');
                    }
                    if item.write_json(out) {
                        first = false;
                    } else {
                        out.truncate(mark);
                    }
                }
                out.push(b']');
            }
            Node::Map(members) => {
                out.push(b'{');
                let mut first = true;
                for (k, v) in members {
                    write_member(out, k, v, &mut first);
                }
                out.push(b'}');
            }
        }
        true
    }
}

/// Appends `"name":value` to an object being written (a comma before all but
/// the first); nothing when the value cannot be JSON.
fn write_member(out: &mut Vec<u8>, name: &str, node: &Node<'_>, first: &mut bool) {
    let mark = out.len();
    if !*first {
        out.push(b',');
    }
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, name);
    out.push(b':');
    if node.write_json(out) {
        *first = false;
    } else {
        out.truncate(mark);
    }
}

/// Why a MaxMind DB table cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MmdbError {
    #[error("cannot read {path}: {message}")]
    Open { path: String, message: String },
    #[error("select `{name}`: `{path}` is not a path (members separated by `.`, list items by their index)")]
    Path { name: String, path: String },
}

/// A MaxMind DB file held by the host.
pub struct MmdbTable {
    reader: maxminddb::Reader<Vec<u8>>,
    /// Output member → path in the record; empty: the whole record.
    select: Vec<(String, Vec<String>)>,
}

impl fmt::Debug for MmdbTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MmdbTable")
            .field("database", &self.reader.metadata.database_type)
            .field("select", &self.select)
            .finish()
    }
}

impl MmdbTable {
    /// Reads the file and checks the selection.
    pub fn open(path: &Path, select: &BTreeMap<String, String>) -> Result<MmdbTable, MmdbError> {
        let mut paths = Vec::with_capacity(select.len());
        for (name, dotted) in select {
            let steps: Vec<String> = dotted.split('.').map(str::to_owned).collect();
            if steps.iter().any(|s| s.is_empty()) {
                return Err(MmdbError::Path {
                    name: name.clone(),
                    path: dotted.clone(),
                });
            }
            paths.push((name.clone(), steps));
        }
        let reader = maxminddb::Reader::open_readfile(path).map_err(|e| MmdbError::Open {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(MmdbTable {
            reader,
            select: paths,
        })
    }

    /// The number of nodes of the file's search tree (what `rows` means for
    /// this table).
    pub fn nodes(&self) -> usize {
        self.reader.metadata.node_count as usize
    }

    /// Appends the value for IP address `key` to `out`; false when the key is
    /// not an address or the database has no record for it.
    pub fn get_into(&self, key: &str, out: &mut Vec<u8>) -> bool {
        let Ok(ip) = key.parse::<IpAddr>() else {
            return false;
        };
        let Ok(Some(record)) = self.reader.lookup::<Node<'_>>(ip) else {
            return false;
        };
        if self.select.is_empty() {
            let mark = out.len();
            if !record.write_json(out) {
                out.truncate(mark);
                return false;
            }
            return true;
        }
        out.push(b'{');
        let mut first = true;
        for (name, path) in &self.select {
            if let Some(node) = record.at(path) {
                write_member(out, name, node, &mut first);
            }
        }
        out.push(b'}');
        true
    }
}

#[cfg(test)]
mod tests {
    use super::Node;

    fn record() -> Node<'static> {
        Node::Map(vec![
            (
                "city",
                Node::Map(vec![(
                    "names",
                    Node::Map(vec![("en", Node::Text("Zürich \"Z\""))]),
                )]),
            ),
            (
                "subdivisions",
                Node::List(vec![
                    Node::Map(vec![("iso_code", Node::Text("ZH"))]),
                    Node::Map(vec![("iso_code", Node::Text("X"))]),
                ]),
            ),
            (
                "location",
                Node::Map(vec![
                    ("latitude", Node::Float(47.3667)),
                    ("accuracy_radius", Node::Unsigned(20)),
                ]),
            ),
            (
                "flags",
                Node::List(vec![Node::Bool(true), Node::Other, Node::Signed(-3)]),
            ),
            ("nan", Node::Float(f64::NAN)),
        ])
    }

    fn json(node: &Node<'_>) -> String {
        let mut out = Vec::new();
        assert!(node.write_json(&mut out));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn paths_pick_members_and_list_items() {
        let r = record();
        let path = |p: &str| p.split('.').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            r.at(&path("city.names.en")),
            Some(&Node::Text("Zürich \"Z\""))
        );
        assert_eq!(
            r.at(&path("subdivisions.1.iso_code")),
            Some(&Node::Text("X"))
        );
        assert_eq!(r.at(&path("subdivisions.2.iso_code")), None);
        assert_eq!(r.at(&path("subdivisions.first")), None);
        assert_eq!(r.at(&path("city.names.en.more")), None);
        assert_eq!(
            r.at(&path("location.latitude")),
            Some(&Node::Float(47.3667))
        );
    }

    #[test]
    fn records_are_written_as_json_without_what_json_cannot_hold() {
        let text = json(&record());
        let parsed: serde_json::Value = serde_json::from_str(&text).expect(&text);
        assert_eq!(parsed["city"]["names"]["en"], "Zürich \"Z\"");
        assert_eq!(parsed["location"]["accuracy_radius"], 20);
        // Bytes and 128-bit numbers are left out of lists and maps; so is NaN.
        assert_eq!(parsed["flags"], serde_json::json!([true, -3]));
        assert!(parsed.get("nan").is_none(), "{text}");
    }
}
