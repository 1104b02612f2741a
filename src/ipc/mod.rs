//! ipc (to be filled in).
