//! Real kernel implementations of the daemon traits (filled in as the kernel modules land).
