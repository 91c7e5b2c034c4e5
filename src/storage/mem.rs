//! [`Storage`](super::Storage) in memory (etcd `MemoryStorage`). STUB, filled in by the log work.

/// An in-memory log for tests and examples.
#[derive(Debug, Default)]
pub struct MemStorage {}
