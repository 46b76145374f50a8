//! geo-enricher: client IP → country (ISO code), region, city, latitude and
//! longitude, from a GeoLite2 City database granted to the step as a file.
//! Only the fields written are decoded. An unknown, private or unparsable IP,
//! or none at all, gets nulls.
//!
//! ```toml
//! [[pipeline.step]]
//! plugin = "geo-enricher"
//! files = ["${WEIR_GEOLITE2}"]              # GeoLite2-City.mmdb
//! limits = { memory_mb = 192 }              # the database is read into memory
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::net::IpAddr;

use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use weir_sdk::{enricher, ConfigError, Event, Fields, FromConfig};

/// The step's configuration: the database, opened at `init`.
pub struct Geo {
    reader: maxminddb::Reader<Vec<u8>>,
}

impl FromConfig for Geo {
    fn from_config(config: &mut weir_sdk::Config) -> Result<Geo, ConfigError> {
        let name: String = config.get_or("database", "GeoLite2-City.mmdb")?;
        let path = config.file(&name)?;
        let reader = maxminddb::Reader::open_readfile(&path).map_err(|e| ConfigError {
            key: "database".into(),
            message: format!("cannot open {}: {e}", path.display()),
        })?;
        Ok(Geo { reader })
    }
}

impl Geo {
    /// Opens a database from a path, for native use.
    pub fn open(path: &std::path::Path) -> Result<Geo, String> {
        maxminddb::Reader::open_readfile(path)
            .map(|reader| Geo { reader })
            .map_err(|e| format!("cannot open {}: {e}", path.display()))
    }

    /// What the database says of `ip` (`None`: not in it).
    pub fn locate(&self, ip: IpAddr) -> Option<Place<'_>> {
        self.reader.lookup::<Place>(ip).ok().flatten()
    }
}

/// The part of a GeoLite2 City record the enricher writes.
#[derive(Debug, Default, Deserialize)]
pub struct Place<'a> {
    #[serde(borrow)]
    pub city: Option<Named<'a>>,
    #[serde(borrow)]
    pub country: Option<Country<'a>>,
    pub location: Option<Location>,
    #[serde(borrow, default, deserialize_with = "first")]
    pub subdivisions: Option<Named<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct Named<'a> {
    #[serde(borrow)]
    pub names: Option<English<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct English<'a> {
    pub en: Option<&'a str>,
}

#[derive(Debug, Deserialize)]
pub struct Country<'a> {
    pub iso_code: Option<&'a str>,
}

#[derive(Debug, Deserialize)]
pub struct Location {
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

fn english<'a>(n: &Option<Named<'a>>) -> Option<&'a str> {
    n.as_ref()?.names.as_ref()?.en
}

/// The first element of a list, the rest skipped without being decoded into anything.
fn first<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Named<'de>>, D::Error> {
    struct First<'de>(PhantomData<&'de ()>);
    impl<'de> Visitor<'de> for First<'de> {
        type Value = Option<Named<'de>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of subdivisions")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let head = seq.next_element::<Named<'de>>()?;
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(head)
        }
    }
    d.deserialize_seq(First(PhantomData))
}

#[enricher(
    reads(ip: text?),
    writes(country: text?, region: text?, city: text?, latitude: float?, longitude: float?)
)]
fn enrich(event: &Event, geo: &Geo, out: &mut Fields) {
    let place = event
        .str("ip")
        .and_then(|ip| ip.parse::<IpAddr>().ok())
        .and_then(|ip| geo.locate(ip))
        .unwrap_or_default();
    let location = place.location.as_ref();
    out.set("country", place.country.as_ref().and_then(|c| c.iso_code));
    out.set("region", english(&place.subdivisions));
    out.set("city", english(&place.city));
    out.set("latitude", location.and_then(|l| l.latitude));
    out.set("longitude", location.and_then(|l| l.longitude));
}

#[cfg(test)]
mod tests {
    use super::weir_plugin;

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
        assert_eq!(us.str("country").as_deref(), Some("US"));
        assert!(us.float("latitude").is_some() && us.float("longitude").is_some());
        let gb = out[1].added();
        assert_eq!(gb.str("country").as_deref(), Some("GB"));
        assert_eq!(gb.str("region").as_deref(), Some("England"));
        for o in &out[2..] {
            let a = o.added();
            for f in ["country", "region", "city", "latitude", "longitude"] {
                assert!(a.is_null(f), "{f} of {a:?}");
            }
        }
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
