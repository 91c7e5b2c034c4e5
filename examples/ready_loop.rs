//! The consensus loop of DESIGN.md section 4, end to end on a temp dir: a toy single-node
//! "consensus" proposes commands, commits them once its own write is durable (one node is a
//! quorum), applies them, then reopens the log and finds everything still there.
//!
//! Run with `cargo run --example ready_loop`.

use std::sync::Arc;

use raftwal::{DiskStorage, Entry, LogConfig, Options, Pipeline, RaftLog, Storage, Wal};

/// How many commands the toy node proposes, and how many per proposal batch.
const COMMANDS: u64 = 2_000;
const BATCH: u64 = 64;

fn main() -> raftwal::Result<()> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (wal, _report) = Wal::open(dir.path(), Options::default())?;
    let wal = Arc::new(wal);
    let config = LogConfig {
        async_storage_writes: true,
        ..LogConfig::default()
    };
    let mut log = RaftLog::with_config(DiskStorage::new(Arc::clone(&wal)), config)?;
    let pipeline = Pipeline::new(wal);

    // The lone node votes for itself in term 1 and leads.
    log.set_term_vote(1, 1)?;
    let term = 1;
    let mut next = log.last_index()? + 1;
    let mut state_machine = 0u64; // the sum of every applied command's number

    while log.applied() < COMMANDS {
        // Consensus: propose the next batch of commands.
        if next <= COMMANDS {
            let batch: Vec<Entry> = (next..=COMMANDS.min(next + BATCH - 1))
                .map(|i| Entry::new(i, term, format!("add {i}")))
                .collect();
            next = log.append(&batch)? + 1;
        }
        // Persist in the background, apply what is committed and durable.
        if log.has_ready() {
            let rd = log.ready_without_accept()?;
            log.accept_ready(&rd)?;
            pipeline.submit(rd.persist_part())?;
            for entry in rd.committed_entries() {
                state_machine += apply(entry);
            }
            if let Some(last) = rd.committed_entries().last() {
                log.applied_to(last.index, raftwal::entries_size(rd.committed_entries()))?;
            }
        }
        // Durable writes come back; with one node, durable here means committed.
        let acks = match next > COMMANDS && !log.has_ready() {
            true => pipeline.wait_completed()?,
            false => pipeline.completed()?,
        };
        for ack in acks {
            log.on_persisted(&ack)?;
            if let Some(last) = ack.last {
                log.maybe_commit(last)?;
            }
        }
    }
    assert_eq!(state_machine, COMMANDS * (COMMANDS + 1) / 2);
    println!(
        "applied {} commands, state machine = {state_machine}",
        log.applied()
    );

    // Everything acknowledged survives a restart.
    drop((log, pipeline));
    let (wal, report) = Wal::open(dir.path(), Options::default())?;
    let storage = DiskStorage::new(Arc::new(wal));
    let state = storage.initial_state()?;
    println!(
        "reopened: last index {}, hard state {:?}, torn bytes dropped {}",
        storage.last_index()?,
        state.hard_state,
        report.torn_bytes_dropped,
    );
    assert_eq!(storage.last_index()?, COMMANDS);
    Ok(())
}

/// The toy state machine's transition: parse "add N" and return N.
fn apply(entry: &Entry) -> u64 {
    std::str::from_utf8(&entry.data)
        .ok()
        .and_then(|cmd| cmd.strip_prefix("add "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
