//! etcd-style unstable log, RaftLog and the Ready lifecycle. Filled in by the log work.
