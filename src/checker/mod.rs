//! checker (to be filled in).
