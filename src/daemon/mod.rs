//! daemon (to be filled in).
