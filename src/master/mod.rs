//! Supervision of worker processes.
