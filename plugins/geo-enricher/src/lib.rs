//! geo-enricher: client IP → country (ISO code), region, city, latitude and
//! longitude, through the host's lookup table `geo`: a MaxMind DB file (such
//! as GeoLite2 City) that the host reads once and every instance of the step
//! shares, answering per address a JSON object of the members it selects. The
//! whole batch is looked up in one call. An unknown, private or unparsable IP,
//! or none at all, gets nulls.
//!
//! ```toml
//! [lookup.geo]
//! mmdb = "${WEIR_GEOLITE2}"                 # GeoLite2-City.mmdb
//! select = { country = "country.iso_code", region = "subdivisions.0.names.en", city = "city.names.en", latitude = "location.latitude", longitude = "location.longitude" }
//!
//! [[pipeline.step]]
//! plugin = "geo-enricher"
//! lookups = ["geo"]
//! ```

use weir_sdk::{enricher, Event, Fields, JsonObject};

#[enricher(
    reads(ip: text?),
    writes(country: text?, region: text?, city: text?, latitude: float?, longitude: float?),
    lookups(geo = "ip")
)]
fn enrich(event: &Event, out: &mut Fields) {
    let place = JsonObject::new(event.lookup(lookups::geo).unwrap_or("{}"));
    out.set(writes::country, place.text("country"));
    out.set(writes::region, place.text("region"));
    out.set(writes::city, place.text("city"));
    out.set(writes::latitude, place.float("latitude"));
    out.set(writes::longitude, place.float("longitude"));
}

#[cfg(test)]
mod tests {
    use weir_sdk::testing::lookup_table;

    use super::{weir_plugin, writes};

    #[test]
    fn addresses_the_table_knows_get_a_place_and_others_nulls() {
        lookup_table(
            "geo",
            &[
                (
                    "81.2.69.160",
                    r#"{"country":"GB","region":"England","city":"London","latitude":51.5142,"longitude":-0.0931}"#,
                ),
                (
                    "8.8.8.8",
                    r#"{"country":"US","latitude":37.751,"longitude":-97.822}"#,
                ),
            ],
        );
        let out = weir_plugin::test(
            &[
                r#"{"ip":"81.2.69.160"}"#,
                r#"{"ip":"8.8.8.8"}"#,
                r#"{"ip":"10.1.2.3"}"#,
                r#"{"ip":"not an ip"}"#,
                r#"{}"#,
            ],
            &[],
        )
        .unwrap();
        assert_eq!(
            out[0].added().0,
            r#"{"country":"GB","region":"England","city":"London","latitude":51.5142,"longitude":-0.0931}"#
        );
        let us = out[1].added();
        assert_eq!(us.get(writes::country).as_deref(), Some("US"));
        assert!(us.is_null(writes::city) && us.is_null(writes::region));
        for o in &out[2..] {
            assert_eq!(
                o.added().0,
                r#"{"country":null,"region":null,"city":null,"latitude":null,"longitude":null}"#
            );
        }
    }
}
