//! STUB: no-gradient ops (argmax, equality, per-row where).
