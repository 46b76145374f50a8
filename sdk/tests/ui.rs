//! The attribute and derive macros, compiled as users would write them: the
//! pass cases build, the fail cases stop with the error at the span that holds
//! the mistake. `TRYBUILD=overwrite cargo test -p weir-sdk --test ui` rewrites
//! the expected messages (ui/fail/*.stderr).

#[test]
fn macros() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
