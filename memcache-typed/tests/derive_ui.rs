//! Compile-fail cases for `#[derive(Cacheable)]`: each `tests/ui/*.rs` must fail to compile
//! with exactly the diagnostics in the `.stderr` next to it. Regenerate with
//! `TRYBUILD=overwrite` and review every changed `.stderr`.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
