//! sessiond (work in progress).
fn main() {}
