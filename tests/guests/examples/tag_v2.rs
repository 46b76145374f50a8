//! tag_v2: the plugin `tag` at version 2.0.0, adding {"weir_test": "v2"} to every event (must cause: rows tagged v2 while it serves; hot reload swaps it).
weir_test_guests::tagger!("tag", "2.0.0", br#"{"weir_test":"v2"}"#);
