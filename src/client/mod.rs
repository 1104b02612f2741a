//! client (to be filled in).
