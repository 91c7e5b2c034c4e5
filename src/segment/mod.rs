//! One segment file. Filled in by the WAL work.
