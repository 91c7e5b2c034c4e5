//! openraft's own storage conformance suite, run against [`OpenraftLog`] on a temp dir.

mod openraft_support;

use openraft::testing::{StoreBuilder, Suite};
use openraft::{StorageError, StorageIOError};
use raftwal::adapters::openraft::OpenraftLog;
use tempfile::TempDir;

use openraft_support::{Config, MemStateMachine, open_log};

/// Builds each suite case a fresh log in its own temp dir, which lives as long as the case.
struct TempLogBuilder;

impl StoreBuilder<Config, OpenraftLog<Config>, MemStateMachine, TempDir> for TempLogBuilder {
    async fn build(
        &self,
    ) -> Result<(TempDir, OpenraftLog<Config>, MemStateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().map_err(|e| StorageIOError::write(&e))?;
        let log = open_log(dir.path());
        Ok((dir, log, MemStateMachine::default()))
    }
}

/// Every case of openraft 0.9's `Suite`: log state, vote, reads, purge (including past the last
/// entry), truncate, append after purge, and membership recovery from the log.
#[test]
fn openraft_suite_passes() {
    // NB: a plain #[test]: the suite makes its own tokio runtime for every case.
    Suite::test_all(TempLogBuilder).expect("openraft's storage suite");
}
