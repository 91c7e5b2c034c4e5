//! openraft adapter. Filled in by the adapter work.
