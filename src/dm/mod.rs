//! dm (to be filled in).
