//! picky_v2: the plugin `picky` at version 2.0.0, fixed: it tags every event {"weir_test": "v2"} (must cause: replayed dead letters of picky 1.0.0 land as rows tagged v2).
weir_test_guests::tagger!("picky", "2.0.0", br#"{"weir_test":"v2"}"#);
