//! Record frame codec. Filled in by the WAL work.
