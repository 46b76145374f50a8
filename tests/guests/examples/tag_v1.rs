//! tag_v1: the plugin `tag` at version 1.0.0, adding {"weir_test": "v1"} to every event (must cause: rows tagged v1 while it serves; hot reload swaps it).
weir_test_guests::tagger!("tag", "1.0.0", br#"{"weir_test":"v1"}"#);
