//! config (to be filled in).
