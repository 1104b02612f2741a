//! policy (to be filled in).
