//! discovery (to be filled in).
