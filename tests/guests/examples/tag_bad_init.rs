//! tag_bad_init: the plugin `tag` at version 3.0.0, whose init always fails (must cause: a reload of it rejected, the serving version staying).
weir_test_guests::tagger!("tag", "3.0.0", br#"{"weir_test":"v3"}"#, init_error = "tag 3.0.0 needs a `colour` setting");
