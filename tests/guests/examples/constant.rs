//! constant: adds {"weir_test": "constant"} to every event (must cause: the field on every row).
weir_test_guests::tagger!("constant", "1.0.0", br#"{"weir_test":"constant"}"#);
