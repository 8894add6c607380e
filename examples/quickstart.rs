//! quickstart (being written)
fn main() {}
