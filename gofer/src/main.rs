//! moat-gofer: serves one sandbox's root to its sentry.
fn main() {}
