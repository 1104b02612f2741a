//! prio (to be filled in).
