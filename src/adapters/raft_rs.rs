//! raft-rs adapter. Filled in by the adapter work.
