//! geo-enricher: client IP → country (ISO code), region, city, latitude and
//! longitude, from a GeoLite2 City database granted to the step as a file.
//! Only the fields written are decoded (by `mmdb`, which also keeps decoded
//! records, shared by many networks, by their offset: the plugin's state,
//! which its function takes as `&mut Geo`). An unknown, private or unparsable
//! IP, or none at all, gets nulls.
//!
//! ```toml
//! [[pipeline.step]]
//! plugin = "geo-enricher"
//! files = ["${WEIR_GEOLITE2}"]              # GeoLite2-City.mmdb
//! limits = { memory_mb = 192 }              # the database is read into memory
//! ```

use std::net::{IpAddr, Ipv4Addr};

use weir_sdk::{enricher, ConfigError, Event, Fields, FromConfig};

pub mod mmdb;

/// The plugin's state: the database, read at `init`, and the records it has
/// decoded so far.
pub struct Geo {
    reader: mmdb::Reader,
}

impl FromConfig for Geo {
    fn from_config(config: &mut weir_sdk::Config) -> Result<Geo, ConfigError> {
        let name: String = config.get_or("database", "GeoLite2-City.mmdb")?;
        let path = config.file(&name)?;
        Geo::open(&path).map_err(|message| ConfigError {
            key: "database".into(),
            message,
        })
    }
}

impl Geo {
    /// Opens a database from a path.
    pub fn open(path: &std::path::Path) -> Result<Geo, String> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let reader = mmdb::Reader::new(bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Geo { reader })
    }
}

#[enricher(
    reads(ip: text?),
    writes(country: text?, region: text?, city: text?, latitude: float?, longitude: float?)
)]
fn enrich(event: &Event, geo: &mut Geo, out: &mut Fields) {
    let reader = &mut geo.reader;
    let place = event
        .get(reads::ip)
        .and_then(|ip| parse_ip(&ip))
        .and_then(|ip| reader.locate(ip))
        .unwrap_or_default();
    out.set(writes::country, reader.text(place.country));
    out.set(writes::region, reader.text(place.region));
    out.set(writes::city, reader.text(place.city));
    out.set(writes::latitude, place.latitude);
    out.set(writes::longitude, place.longitude);
}

/// An address: dotted-quad IPv4 read in one pass over its bytes, anything
/// else (IPv6) by the standard parser.
fn parse_ip(text: &str) -> Option<IpAddr> {
    match parse_v4(text.as_bytes()) {
        Some(v4) => Some(IpAddr::V4(v4)),
        None => text.parse().ok(),
    }
}

/// Four decimal octets separated by dots, without leading zeros (as the
/// standard parser requires); `None` for anything else.
fn parse_v4(text: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let (mut part, mut value, mut digits) = (0, 0u32, 0);
    for &c in text {
        match c {
            b'0'..=b'9' if digits < 3 && !(digits == 1 && value == 0) => {
                value = value * 10 + u32::from(c - b'0');
                digits += 1;
            }
            b'.' if digits > 0 && part < 3 => {
                octets[part] = u8::try_from(value).ok()?;
                (part, value, digits) = (part + 1, 0, 0);
            }
            _ => return None,
        }
    }
    if part != 3 || digits == 0 {
        return None;
    }
    octets[3] = u8::try_from(value).ok()?;
    Some(Ipv4Addr::from(octets))
}

#[cfg(test)]
mod tests {
    use super::{weir_plugin, writes};

    /// The database `scripts/services geolite2` fetches (or `WEIR_GEOLITE2`).
    fn database() -> String {
        std::env::var("WEIR_GEOLITE2").unwrap_or_else(|_| {
            let home = std::env::var("HOME").unwrap_or_default();
            let path = format!("{home}/.cache/weir/geolite2/GeoLite2-City.mmdb");
            assert!(
                std::path::Path::new(&path).exists(),
                "{path} is missing: run `scripts/services geolite2`"
            );
            path
        })
    }

    #[test]
    fn public_ips_get_a_place_and_private_or_bad_ones_nulls() {
        let db = database();
        let out = weir_plugin::test(
            &[
                r#"{"ip":"8.8.8.8"}"#,
                r#"{"ip":"81.2.69.160"}"#,
                r#"{"ip":"10.1.2.3"}"#,
                r#"{"ip":"not an ip"}"#,
                r#"{}"#,
            ],
            &[("file.GeoLite2-City.mmdb", &db)],
        )
        .unwrap();
        let us = out[0].added();
        assert_eq!(us.get(writes::country).as_deref(), Some("US"));
        assert!(us.get(writes::latitude).is_some() && us.get(writes::longitude).is_some());
        let gb = out[1].added();
        assert_eq!(gb.get(writes::country).as_deref(), Some("GB"));
        assert_eq!(gb.get(writes::region).as_deref(), Some("England"));
        for o in &out[2..] {
            assert_eq!(
                o.added().0,
                r#"{"country":null,"region":null,"city":null,"latitude":null,"longitude":null}"#
            );
        }
    }

    /// The one-pass IPv4 reader agrees with the standard parser, on addresses
    /// and on near misses.
    #[test]
    fn reads_addresses_as_the_standard_parser_does() {
        let mut texts: Vec<String> = [
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "01.2.3.4",
            "1.2.3.04",
            "0.10.100.0",
            "1..2.3",
            ".1.2.3",
            "1.2.3.",
            "1.2.3.4 ",
            "",
            "1.2.3.1000",
            "::1",
            "2001:db8::1",
            "::ffff:1.2.3.4",
            "a.b.c.d",
            "1.2.3.-4",
        ]
        .map(String::from)
        .to_vec();
        let mut x: u32 = 0x2545_f491;
        for _ in 0..50_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            texts.push(std::net::Ipv4Addr::from(x).to_string());
        }
        for t in &texts {
            assert_eq!(super::parse_ip(t), t.parse().ok(), "{t:?}");
        }
    }

    /// The reader agrees with the maxminddb crate on 20,000 addresses.
    #[test]
    fn agrees_with_the_reference_reader() {
        let path = database();
        let reference = maxminddb::Reader::open_readfile(&path).unwrap();
        let mut reader = super::Geo::open(std::path::Path::new(&path))
            .unwrap()
            .reader;
        let mut x: u32 = 0x2545_f491;
        let mut located = 0;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let ip = std::net::IpAddr::V4(x.into());
            let want: Option<maxminddb::geoip2::City> = reference.lookup(ip).unwrap();
            let got = reader.locate(ip);
            assert_eq!(want.is_some(), got.is_some(), "{ip}");
            let (Some(want), Some(got)) = (want, got) else {
                continue;
            };
            located += 1;
            fn en<'a>(n: Option<&std::collections::BTreeMap<&'a str, &'a str>>) -> Option<&'a str> {
                n.and_then(|n| n.get("en").copied())
            }
            assert_eq!(
                reader.text(got.country),
                want.country.as_ref().and_then(|c| c.iso_code),
                "{ip}"
            );
            assert_eq!(
                reader.text(got.city),
                en(want.city.as_ref().and_then(|c| c.names.as_ref())),
                "{ip}"
            );
            let region = want
                .subdivisions
                .as_ref()
                .and_then(|s| s.first())
                .and_then(|s| en(s.names.as_ref()));
            assert_eq!(reader.text(got.region), region, "{ip}");
            let loc = want.location.as_ref();
            assert_eq!(got.latitude, loc.and_then(|l| l.latitude), "{ip}");
            assert_eq!(got.longitude, loc.and_then(|l| l.longitude), "{ip}");
        }
        assert!(located > 10_000, "{located}");
    }

    #[test]
    fn a_corrupt_database_fails_init_saying_so() {
        let dir = std::env::temp_dir().join(format!("geo-corrupt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("GeoLite2-City.mmdb");
        std::fs::write(&file, b"not a database").unwrap();
        let err = weir_plugin::test(&[], &[("file.GeoLite2-City.mmdb", file.to_str().unwrap())])
            .unwrap_err();
        assert!(
            err.ends_with("not a MaxMind DB file (no metadata marker)"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_database_fails_init_naming_it() {
        let err = weir_plugin::test(&[], &[]).unwrap_err();
        assert_eq!(
            err,
            "config `file.GeoLite2-City.mmdb`: file `GeoLite2-City.mmdb` is not granted: add it to the step's `files`"
        );
    }
}
