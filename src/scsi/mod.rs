//! scsi (to be filled in).
