//! moat-runtime: placeholder
