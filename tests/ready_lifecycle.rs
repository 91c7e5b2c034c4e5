//! The Ready lifecycle and the persistence pipeline: worked examples W1-W5, the async rows of
//! spec 5.5 (A09: the ABA race), sync-mode rules and the pipeline's delayed, stale and failed
//! acknowledgements.

mod log_common;

use std::sync::Arc;

use log_common::{HeldWriter, e, ents, ids, snap};
use raftwal::{
    DiskStorage, EntryId, Error, HardState, LogConfig, MemStorage, Options, Pipeline, RaftLog,
    Storage, Wal, entries_size,
};

const ASYNC: LogConfig = LogConfig {
    max_applying_size: u64::MAX,
    async_storage_writes: true,
};

/// W1's start: storage `MS{0@0; 1@1 2@1 3@1}`, hard state {term 2, vote 1, commit 3},
/// everything applied.
fn w1_start(config: LogConfig) -> (MemStorage, RaftLog<MemStorage>) {
    let storage = MemStorage::new();
    storage.append(&ents(&[(1, 1), (2, 1), (3, 1)])).unwrap();
    storage.set_hard_state(HardState {
        term: 2,
        vote: 1,
        commit: 3,
    });
    let mut log = RaftLog::with_config(storage.clone(), config).unwrap();
    log.applied_to(3, 0).unwrap();
    assert!(!log.has_ready());
    (storage, log)
}

/// Takes the next Ready, accepts it and submits its write.
fn issue(log: &mut RaftLog<MemStorage>, pipeline: &Pipeline<HeldWriter>) {
    let rd = log.ready_without_accept().unwrap();
    log.accept_ready(&rd).unwrap();
    pipeline.submit(rd.persist_part()).unwrap();
}

/// Feeds every acknowledgement the pipeline has to the log.
fn deliver(log: &mut RaftLog<MemStorage>, pipeline: &Pipeline<HeldWriter>) {
    for ack in pipeline.completed().unwrap() {
        log.on_persisted(&ack).unwrap();
    }
}

/// (offset, offset_in_progress, unstable entries, committed, applying, applied, last index).
type Row = (u64, u64, Vec<(u64, u64)>, u64, u64, u64, u64);

fn row(log: &RaftLog<MemStorage>) -> Row {
    let u = log.unstable();
    (
        u.offset(),
        u.offset_in_progress(),
        ids(u.entries()),
        log.committed(),
        log.applying(),
        log.applied(),
        log.last_index().unwrap(),
    )
}

#[test]
fn w1_sync_single_voter_leader() {
    let (storage, mut log) = w1_start(LogConfig::default());
    // Step 1: append.
    log.append(&ents(&[(4, 2), (5, 2)])).unwrap();
    assert_eq!(row(&log), (4, 4, vec![(4, 2), (5, 2)], 3, 3, 3, 5));
    assert_eq!(ids(log.next_unstable_ents()), [(4, 2), (5, 2)]);
    // Step 2: the Ready.
    assert!(log.has_ready());
    let rd = log.ready_without_accept().unwrap();
    assert_eq!(ids(rd.entries()), [(4, 2), (5, 2)]);
    assert!(rd.committed_entries().is_empty() && rd.hard_state().is_none() && rd.must_sync());
    // Step 3: accept.
    log.accept_ready(&rd).unwrap();
    assert_eq!(row(&log), (4, 6, vec![(4, 2), (5, 2)], 3, 3, 3, 5));
    assert!(log.next_unstable_ents().is_empty() && log.has_next_or_in_progress_unstable_ents());
    // Step 4: the application writes; step 5: its own ack commits.
    storage.append(rd.entries()).unwrap();
    assert!(log.maybe_commit(EntryId::new(2, 5)).unwrap());
    assert_eq!(row(&log), (4, 6, vec![(4, 2), (5, 2)], 5, 3, 3, 5));
    // Step 6: advance marks the write stable.
    log.advance().unwrap();
    assert_eq!(row(&log), (6, 6, vec![], 5, 3, 3, 5));
    assert!(!log.has_next_or_in_progress_unstable_ents());
    // Step 7: committed entries come from storage; a commit-only change needs no sync.
    let rd = log.ready_without_accept().unwrap();
    assert_eq!(ids(rd.committed_entries()), [(4, 2), (5, 2)]);
    let hs = HardState {
        term: 2,
        vote: 1,
        commit: 5,
    };
    assert_eq!((rd.hard_state(), rd.must_sync()), (Some(hs), false));
    log.accept_ready(&rd).unwrap();
    assert_eq!(row(&log), (6, 6, vec![], 5, 5, 3, 5));
    // Step 8: advance acknowledges the apply.
    log.advance().unwrap();
    assert_eq!(row(&log), (6, 6, vec![], 5, 5, 5, 5));
    assert_eq!(log.applying_size(), 0);
    assert!(!log.has_ready());
}

#[test]
fn w2_async_pipelined_appends() {
    let (storage, mut log) = w1_start(ASYNC);
    let writer = Arc::new(HeldWriter::new(storage.clone()));
    let pipeline = Pipeline::new(writer.clone());
    // A: append 4, 5 and issue write #1.
    log.append(&ents(&[(4, 2), (5, 2)])).unwrap();
    issue(&mut log, &pipeline);
    assert_eq!(row(&log), (4, 6, vec![(4, 2), (5, 2)], 3, 3, 3, 5));
    // B: propose 6; only it is new.
    log.append(&[e(6, 2)]).unwrap();
    assert_eq!(ids(log.next_unstable_ents()), [(6, 2)]);
    // C: issue write #2 before #1 is durable.
    issue(&mut log, &pipeline);
    assert_eq!(row(&log), (4, 7, vec![(4, 2), (5, 2), (6, 2)], 3, 3, 3, 6));
    assert_eq!(
        (pipeline.in_flight(), pipeline.completed().unwrap()),
        (2, vec![])
    );
    // Entries are readable from storage before any sync.
    assert_eq!(storage.last_index().unwrap(), 6);
    // D: #1 durable.
    writer.release(1);
    deliver(&mut log, &pipeline);
    assert!(log.maybe_commit(EntryId::new(2, 5)).unwrap());
    assert_eq!(row(&log), (6, 7, vec![(6, 2)], 5, 3, 3, 6));
    // E: only locally durable committed entries are handed out.
    let rd = log.ready_without_accept().unwrap();
    assert_eq!(ids(rd.committed_entries()), [(4, 2), (5, 2)]);
    let applied_size = entries_size(rd.committed_entries());
    log.accept_ready(&rd).unwrap();
    pipeline.submit(rd.persist_part()).unwrap(); // the commit index, no sync needed
    assert_eq!(row(&log), (6, 7, vec![(6, 2)], 5, 5, 3, 6));
    // F: #2 durable.
    writer.release_all();
    deliver(&mut log, &pipeline);
    assert!(log.maybe_commit(EntryId::new(2, 6)).unwrap());
    assert_eq!(row(&log), (7, 7, vec![], 6, 5, 3, 6));
    // G: the apply of [4, 5] is acknowledged; 6 is next.
    log.applied_to(5, applied_size).unwrap();
    assert_eq!(row(&log), (7, 7, vec![], 6, 5, 5, 6));
    assert_eq!(ids(&log.next_committed_ents(false).unwrap()), [(6, 2)]);
    assert!(
        matches!(log.advance(), Err(Error::InvalidCall(_))),
        "no advance in async mode"
    );
}

#[test]
fn w3_follower_in_flight_entries_replaced_by_a_newer_leader() {
    let (storage, mut log) = w1_start(ASYNC);
    let writer = Arc::new(HeldWriter::new(storage));
    let pipeline = Pipeline::new(writer.clone());
    assert_eq!(
        log.maybe_append(EntryId::new(1, 3), 3, &ents(&[(4, 2), (5, 2)]))
            .unwrap(),
        Some(5)
    );
    issue(&mut log, &pipeline);
    assert_eq!(row(&log), (4, 6, vec![(4, 2), (5, 2)], 3, 3, 3, 5));
    // Term 3's leader replaces the tail.
    log.set_term_vote(3, 0).unwrap();
    assert_eq!(
        log.maybe_append(EntryId::new(1, 3), 3, &[e(4, 3)]).unwrap(),
        Some(4)
    );
    assert_eq!(row(&log), (4, 4, vec![(4, 3)], 3, 3, 3, 4));
    // The old write's ack is from term 2: ignored; even unfiltered, 5@2 is gone.
    writer.release(1);
    let old_ack = pipeline.completed().unwrap()[0];
    assert_eq!((old_ack.term, old_ack.last), (2, Some(EntryId::new(2, 5))));
    log.on_persisted(&old_ack).unwrap();
    log.stable_to(EntryId::new(2, 5));
    assert_eq!(row(&log), (4, 4, vec![(4, 3)], 3, 3, 3, 4));
    // The new write (with the term-3 hard state) is issued and becomes durable.
    issue(&mut log, &pipeline);
    assert_eq!(log.unstable().offset_in_progress(), 5);
    writer.release_all();
    deliver(&mut log, &pipeline);
    assert_eq!(row(&log), (5, 5, vec![], 3, 3, 3, 4));
}

#[test]
fn w5_snapshot_blocks_applying_until_it_is_durable() {
    let (storage, mut log) = w1_start(LogConfig::default());
    log.append(&[e(4, 1)]).unwrap();
    log.restore(snap(10, 3)).unwrap();
    let u = log.unstable();
    assert_eq!(
        (u.offset(), u.offset_in_progress(), u.entries().len()),
        (11, 11, 0)
    );
    assert!(u.snapshot().is_some() && !u.snapshot_in_progress());
    assert_eq!((log.committed(), log.applying(), log.applied()), (10, 3, 3));
    assert_eq!(
        (log.first_index().unwrap(), log.last_index().unwrap()),
        (11, 10)
    );
    assert_eq!(log.term(10).unwrap(), 3);
    assert!(matches!(log.term(9), Err(Error::Compacted { .. })));
    assert!(matches!(log.term(11), Err(Error::Unavailable { .. })));
    assert!(!log.has_next_committed_ents(true));
    // Accept: the snapshot is in progress and still blocks applying.
    let rd = log.ready_without_accept().unwrap();
    assert_eq!(rd.snapshot().map(|s| s.meta.index), Some(10));
    log.accept_ready(&rd).unwrap();
    assert!(log.next_unstable_snapshot().is_none() && log.has_next_or_in_progress_snapshot());
    assert!(!log.has_next_committed_ents(true));
    // Appending after the snapshot is fine while it is being written.
    log.append(&[e(11, 3)]).unwrap();
    assert_eq!(log.last_index().unwrap(), 11);
    // The application installs the snapshot; advance reports it.
    storage
        .apply_snapshot(rd.snapshot().unwrap().clone())
        .unwrap();
    log.advance().unwrap();
    assert!(log.unstable().snapshot().is_none());
    assert_eq!((log.applying(), log.applied()), (10, 10));
    assert_eq!(ids(log.next_unstable_ents()), [(11, 3)]);
}

/// Spec 5.5 A09, the ABA race: a follower's tail is replaced twice while writes are in flight;
/// acknowledgements from an older term must not mark the current tail stable.
#[test]
fn a09_aba_race_acks_from_older_terms_are_ignored() {
    let storage = MemStorage::new();
    storage
        .append(&(1..=11).map(|i| e(i, 1)).collect::<Vec<_>>())
        .unwrap();
    let writer = Arc::new(HeldWriter::new(storage.clone()));
    let pipeline = Pipeline::new(writer.clone());
    let mut log = RaftLog::with_config(storage.clone(), ASYNC).unwrap();
    let prev = EntryId::new(1, 11);
    let mut stored = Vec::new();
    // (1) 12@1 from leader 2, term 1.
    log.set_term_vote(1, 2).unwrap();
    log.maybe_append(prev, 11, &[e(12, 1)]).unwrap();
    issue(&mut log, &pipeline);
    stored.push(storage.term(12).unwrap());
    // (2) leader 3, term 2, overwrites with 12@2.
    log.set_term_vote(2, 3).unwrap();
    log.maybe_append(prev, 11, &[e(12, 2)]).unwrap();
    issue(&mut log, &pipeline);
    stored.push(storage.term(12).unwrap());
    // (3) term 3 learnt from a heartbeat (hard-state write, tail 12@2), then 12@3.
    log.set_term_vote(3, 0).unwrap();
    issue(&mut log, &pipeline);
    stored.push(storage.term(12).unwrap());
    log.maybe_append(prev, 11, &[e(12, 3)]).unwrap();
    issue(&mut log, &pipeline);
    stored.push(storage.term(12).unwrap());
    assert_eq!(
        stored,
        [1, 2, 2, 3],
        "storage progression, one write at a time"
    );
    // Responses complete in order; all but the last are ignored.
    writer.release_all();
    let acks = pipeline.completed().unwrap();
    let want = [(1, 1), (2, 2), (3, 2), (3, 3)];
    let got: Vec<_> = acks
        .iter()
        .map(|a| (a.term, a.last.unwrap().term))
        .collect();
    assert_eq!(got, want, "(term at issue, last entry's term) of each ack");
    for ack in &acks[..3] {
        log.on_persisted(ack).unwrap();
        assert_eq!(
            ids(log.unstable().entries()),
            [(12, 3)],
            "12@3 stays until it is durable"
        );
    }
    log.on_persisted(&acks[3]).unwrap();
    assert!(log.unstable().entries().is_empty());
    assert_eq!(log.term(12).unwrap(), 3);
}

/// The ABA shape that a plain (index, term) match gets wrong: a re-elected leader re-sends the
/// very entry an old write carried, while a newer write is still in flight.
#[test]
fn a09_an_old_ack_matching_the_tail_by_id_is_still_ignored() {
    let (storage, mut log) = w1_start(ASYNC);
    let writer = Arc::new(HeldWriter::new(storage.clone()));
    let pipeline = Pipeline::new(writer.clone());
    let prev = EntryId::new(1, 3);
    log.maybe_append(prev, 3, &[e(4, 2)]).unwrap();
    issue(&mut log, &pipeline);
    log.set_term_vote(3, 0).unwrap();
    log.maybe_append(prev, 3, &[e(4, 3)]).unwrap();
    issue(&mut log, &pipeline);
    // A term-4 leader that still holds 4@2 sends it again.
    log.set_term_vote(4, 0).unwrap();
    log.maybe_append(prev, 3, &[e(4, 2)]).unwrap();
    issue(&mut log, &pipeline);
    writer.release(1);
    let first = pipeline.completed().unwrap();
    assert_eq!(
        first[0].last,
        Some(EntryId::new(2, 4)),
        "matches the tail by id"
    );
    log.on_persisted(&first[0]).unwrap();
    assert_eq!(
        ids(log.unstable().entries()),
        [(4, 2)],
        "but its term is old: kept"
    );
    writer.release_all();
    deliver(&mut log, &pipeline);
    assert!(log.unstable().entries().is_empty());
}

#[test]
fn a_ready_with_a_snapshot_and_entries_writes_the_snapshot_first() {
    let (storage, mut log) = w1_start(ASYNC);
    let writer = Arc::new(HeldWriter::new(storage.clone()));
    let pipeline = Pipeline::new(writer.clone());
    log.set_term_vote(3, 0).unwrap();
    log.restore(snap(10, 3)).unwrap();
    log.maybe_append(EntryId::new(3, 10), 11, &[e(11, 3)])
        .unwrap();
    let rd = log.ready_without_accept().unwrap();
    assert!(rd.snapshot().is_some() && !rd.entries().is_empty());
    log.accept_ready(&rd).unwrap();
    pipeline.submit(rd.persist_part()).unwrap();
    // Had the entries gone first, installing the snapshot would have dropped them.
    assert_eq!(
        (
            storage.first_index().unwrap(),
            storage.last_index().unwrap()
        ),
        (11, 11)
    );
    assert_eq!(storage.term(11).unwrap(), 3);
    writer.release_all();
    let acks = pipeline.wait_completed().unwrap();
    assert_eq!(acks.len(), 1);
    log.on_persisted(&acks[0]).unwrap();
    assert!(log.unstable().snapshot().is_none() && log.unstable().entries().is_empty());
    assert_eq!((log.committed(), log.applied()), (11, 10));
    assert_eq!(
        ids(log.ready_without_accept().unwrap().committed_entries()),
        [(11, 3)]
    );
}

#[test]
fn a_stale_snapshot_ack_is_still_honoured() {
    let (storage, mut log) = w1_start(ASYNC);
    let pipeline = Pipeline::new(Arc::new(HeldWriter::new(storage)));
    log.restore(snap(10, 2)).unwrap();
    issue(&mut log, &pipeline);
    log.set_term_vote(5, 0).unwrap();
    pipeline.writer().release_all();
    let ack = pipeline.completed().unwrap()[0];
    assert!(ack.term < 5);
    log.on_persisted(&ack).unwrap();
    assert!(log.unstable().snapshot().is_none());
    assert_eq!(log.applied(), 10);
}

#[test]
fn a_failed_sync_stops_the_pipeline() {
    let (storage, mut log) = w1_start(ASYNC);
    let writer = Arc::new(HeldWriter::new(storage));
    let pipeline = Pipeline::new(writer.clone());
    for i in 4..7 {
        log.append(&[e(i, 2)]).unwrap();
        issue(&mut log, &pipeline);
    }
    writer.release(1);
    writer.fail_next();
    writer.release_all();
    // The durable write's ack first, then the error, then Poisoned for good.
    let acks = pipeline.completed().unwrap();
    assert_eq!(
        acks.iter()
            .map(|a| a.last.unwrap().index)
            .collect::<Vec<_>>(),
        [4]
    );
    assert!(pipeline.completed().is_err());
    assert!(matches!(pipeline.completed(), Err(Error::Poisoned)));
    log.append(&[e(7, 2)]).unwrap();
    let rd = log.ready_without_accept().unwrap();
    assert!(matches!(
        pipeline.submit(rd.persist_part()),
        Err(Error::Poisoned)
    ));
    log.on_persisted(&acks[0]).unwrap();
    assert_eq!(
        log.unstable().offset(),
        5,
        "entries after the failure stay unstable"
    );
}

#[test]
fn wait_completed_syncs_what_is_in_flight() {
    let (storage, mut log) = w1_start(ASYNC);
    let writer = Arc::new(HeldWriter::new(storage));
    let pipeline = Pipeline::new(writer.clone());
    assert!(
        pipeline.wait_completed().unwrap().is_empty(),
        "nothing in flight: no wait"
    );
    for i in 4..6 {
        log.append(&[e(i, 2)]).unwrap();
        issue(&mut log, &pipeline);
    }
    assert_eq!(
        (pipeline.in_flight(), pipeline.completed().unwrap()),
        (2, vec![])
    );
    // No background release: the waiting caller syncs both writes itself.
    let acks = pipeline.wait_completed().unwrap();
    let lasts: Vec<_> = acks.iter().map(|a| a.last.unwrap().index).collect();
    assert_eq!((lasts, pipeline.in_flight()), (vec![4, 5], 0));
    assert_eq!(writer.release_all(), 0, "the sync released everything");
}

#[test]
fn sync_mode_requires_advance_between_readies() {
    let (_storage, mut log) = w1_start(LogConfig::default());
    log.append(&[e(4, 2)]).unwrap();
    let rd = log.ready_without_accept().unwrap();
    log.accept_ready(&rd).unwrap();
    log.append(&[e(5, 2)]).unwrap();
    let rd2 = log.ready_without_accept().unwrap();
    let before = row(&log);
    assert!(matches!(log.accept_ready(&rd2), Err(Error::InvalidCall(_))));
    assert_eq!(row(&log), before);
}

#[test]
fn a_stale_ready_is_rejected() {
    let (_storage, mut log) = w1_start(ASYNC);
    log.append(&[e(4, 2)]).unwrap();
    let rd = log.ready_without_accept().unwrap();
    log.append(&[e(5, 2)]).unwrap();
    assert!(matches!(log.accept_ready(&rd), Err(Error::InvalidCall(_))));
    assert_eq!(
        log.unstable().offset_in_progress(),
        4,
        "nothing was marked in progress"
    );
    let rd = log.ready_without_accept().unwrap();
    log.accept_ready(&rd).unwrap();
    assert_eq!(log.unstable().offset_in_progress(), 6);
}

#[test]
fn term_and_vote_changes_need_a_sync_and_cannot_go_back() {
    let (_storage, mut log) = w1_start(LogConfig::default());
    log.set_term_vote(3, 0).unwrap();
    let rd = log.ready_without_accept().unwrap();
    assert!(rd.must_sync() && rd.entries().is_empty());
    assert_eq!(rd.hard_state().map(|hs| (hs.term, hs.vote)), Some((3, 0)));
    log.accept_ready(&rd).unwrap();
    log.advance().unwrap();
    assert!(!log.has_ready());
    log.set_term_vote(3, 2).unwrap();
    assert!(
        log.ready_without_accept().unwrap().must_sync(),
        "a new vote"
    );
    assert!(matches!(
        log.set_term_vote(3, 1),
        Err(Error::InvalidCall(_))
    ));
    assert!(matches!(
        log.set_term_vote(2, 0),
        Err(Error::InvalidCall(_))
    ));
    assert_eq!(log.hard_state().term, 3);
}

#[test]
fn restart_from_a_snapshot_applies_what_is_committed() {
    // Spec: 5.4 R06
    let storage = MemStorage::new();
    storage.apply_snapshot(snap(2, 1)).unwrap();
    storage.append(&[e(3, 1)]).unwrap();
    storage.set_hard_state(HardState {
        term: 1,
        vote: 0,
        commit: 3,
    });
    let mut log = RaftLog::new(storage).unwrap();
    assert_eq!(
        (log.unstable().offset(), log.committed(), log.applied()),
        (4, 3, 2)
    );
    let rd = log.ready_without_accept().unwrap();
    assert_eq!(ids(rd.committed_entries()), [(3, 1)]);
    assert!(rd.hard_state().is_none() && !rd.must_sync());
    log.accept_ready(&rd).unwrap();
    log.advance().unwrap();
    assert!(!log.has_ready());
}

#[test]
fn a_stored_commit_beyond_the_log_is_refused() {
    let storage = MemStorage::new();
    storage.append(&[e(1, 1)]).unwrap();
    storage.set_hard_state(HardState {
        term: 1,
        vote: 0,
        commit: 2,
    });
    let err = RaftLog::new(storage).unwrap_err();
    assert!(matches!(
        err,
        Error::CommitBeyondLast {
            commit: 2,
            last_index: 1
        }
    ));
}

#[test]
fn apply_flow_control_across_readies() {
    // Spec 5.5 A02-A04 on the log: the budget covers every unacknowledged batch.
    let (storage, mut log) = w1_start(LogConfig {
        max_applying_size: 2048,
        async_storage_writes: true,
    });
    let writer = Arc::new(HeldWriter::new(storage));
    let pipeline = Pipeline::new(writer.clone());
    let mut handed_out = Vec::new();
    for i in 4..7 {
        log.append(&[log_common::Entry::new(i, 2, vec![0u8; 1024])])
            .unwrap();
        issue(&mut log, &pipeline);
        writer.release_all();
        deliver(&mut log, &pipeline);
        log.commit_to(i).unwrap();
        let rd = log.ready_without_accept().unwrap();
        handed_out.push(ids(rd.committed_entries()));
        log.accept_ready(&rd).unwrap();
    }
    // 4 alone, then 5 (the budget has room for less than an entry, but one always goes out),
    // then nothing while both applies are outstanding.
    assert_eq!(handed_out, [vec![(4, 2)], vec![(5, 2)], vec![]]);
    assert!(log.applying_paused());
    log.applied_to(5, 2 * (1024 + raftwal::ENTRY_OVERHEAD))
        .unwrap();
    assert_eq!(ids(&log.next_committed_ents(false).unwrap()), [(6, 2)]);
}

#[test]
fn a06_a07_candidate_and_pipelined_leader_acks() {
    let storage = MemStorage::new();
    storage.apply_snapshot(snap(10, 1)).unwrap();
    let writer = Arc::new(HeldWriter::new(storage.clone()));
    let pipeline = Pipeline::new(writer.clone());
    let mut log = RaftLog::with_config(storage, ASYNC).unwrap();
    // Spec: 5.5 A06 — the candidate's vote: a synced hard state, no entries to acknowledge.
    log.set_term_vote(1, 1).unwrap();
    let rd = log.ready_without_accept().unwrap();
    let hs = HardState {
        term: 1,
        vote: 1,
        commit: 10,
    };
    assert_eq!(
        (rd.hard_state(), rd.must_sync(), rd.entries().len()),
        (Some(hs), true, 0)
    );
    assert_eq!(rd.persist_part().ack.last, None);
    log.accept_ready(&rd).unwrap();
    pipeline.submit(rd.persist_part()).unwrap();
    // Spec: 5.5 A07 — the leader's writes for 11, 12, 13 are all issued before any completes.
    for i in 11..14 {
        log.append(&[e(i, 1)]).unwrap();
        let rd = log.ready_without_accept().unwrap();
        assert_eq!(ids(rd.entries()), [(i, 1)], "only the new entry");
        assert_eq!(rd.persist_part().ack.last, Some(EntryId::new(1, i)));
        log.accept_ready(&rd).unwrap();
        pipeline.submit(rd.persist_part()).unwrap();
        assert_eq!(log.unstable().offset_in_progress(), i + 1);
    }
    // A commit-only Ready acknowledges the whole tail still in flight, applies nothing yet.
    log.commit_to(12).unwrap();
    let rd = log.ready_without_accept().unwrap();
    assert!(rd.entries().is_empty() && rd.committed_entries().is_empty() && !rd.must_sync());
    assert_eq!(rd.persist_part().ack.last, Some(EntryId::new(1, 13)));
    log.accept_ready(&rd).unwrap();
    pipeline.submit(rd.persist_part()).unwrap();
    // Only what is durable locally is applied.
    writer.release(3);
    deliver(&mut log, &pipeline);
    assert_eq!(log.unstable().offset(), 13);
    assert_eq!(
        ids(log.ready_without_accept().unwrap().committed_entries()),
        [(11, 1), (12, 1)]
    );
    writer.release_all();
    deliver(&mut log, &pipeline);
    assert!(log.unstable().entries().is_empty());
}

#[test]
fn a08_entries_already_in_progress_are_not_written_again() {
    // Spec: 5.5 A08
    let (storage, mut log) = w1_start(ASYNC);
    let writer = Arc::new(HeldWriter::new(storage));
    let pipeline = Pipeline::new(writer.clone());
    let prev = EntryId::new(1, 3);
    log.maybe_append(prev, 3, &ents(&[(4, 2), (5, 2)])).unwrap();
    issue(&mut log, &pipeline);
    // The leader resends the same entries while they are being written.
    assert_eq!(
        log.maybe_append(prev, 3, &ents(&[(4, 2), (5, 2)])).unwrap(),
        Some(5)
    );
    assert!(!log.has_next_unstable_ents() && !log.has_ready());
    assert_eq!(log.unstable().offset_in_progress(), 6);
    assert_eq!(pipeline.in_flight(), 1);
    writer.release_all();
    deliver(&mut log, &pipeline);
    assert!(log.unstable().entries().is_empty());
}

#[test]
fn over_the_wal_writes_are_readable_at_once_and_the_snapshot_goes_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::default();
    options.segment_size = 64 << 10;
    let wal = Arc::new(Wal::open(dir.path(), options.clone()).unwrap().0);
    let storage = DiskStorage::new(Arc::clone(&wal));
    let mut log = RaftLog::with_config(storage.clone(), ASYNC).unwrap();
    let pipeline = Pipeline::new(wal);
    log.set_term_vote(3, 0).unwrap();
    log.restore(snap(10, 3)).unwrap();
    log.maybe_append(EntryId::new(3, 10), 11, &ents(&[(11, 3), (12, 3)]))
        .unwrap();
    let rd = log.ready_without_accept().unwrap();
    assert!(rd.snapshot().is_some() && rd.entries().len() == 2);
    log.accept_ready(&rd).unwrap();
    pipeline.submit(rd.persist_part()).unwrap();
    // Readable through the storage as soon as submit returns, before any ack is taken.
    assert_eq!(storage.first_index().unwrap(), 11);
    assert_eq!(
        ids(&storage.entries(11, 13, u64::MAX).unwrap()),
        [(11, 3), (12, 3)]
    );
    assert_eq!(storage.initial_state().unwrap().hard_state.term, 3);
    // Polling hands the write to the WAL's background syncer; its ack arrives on its own.
    let mut acks = pipeline.completed().unwrap();
    for _ in 0..10_000 {
        if !acks.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
        acks = pipeline.completed().unwrap();
    }
    assert_eq!(
        acks.len(),
        1,
        "the background syncer acknowledged the write"
    );
    log.on_persisted(&acks[0]).unwrap();
    let u = log.unstable();
    assert!(u.entries().is_empty() && u.snapshot().is_none());
    assert_eq!((log.committed(), log.applied()), (11, 10));
    // And it is all there after a restart.
    drop((log, pipeline, storage));
    let (wal, _) = Wal::open(dir.path(), options).unwrap();
    let log = RaftLog::new(DiskStorage::new(Arc::new(wal))).unwrap();
    assert_eq!(
        (log.first_index().unwrap(), log.last_index().unwrap()),
        (11, 12)
    );
    assert_eq!((log.committed(), log.term(12).unwrap()), (11, 3));
}

/// Found by the model test: an ack for entries after a pending snapshot, fed before the ack
/// that installed the snapshot, left the snapshot pending with its entries gone, so the log's
/// last index fell back to the snapshot's. Every ack now names the pending snapshot.
#[test]
fn regression_acks_fed_out_of_order_keep_the_view_whole() {
    let (storage, mut log) = w1_start(ASYNC);
    let writer = Arc::new(HeldWriter::new(storage));
    let pipeline = Pipeline::new(writer.clone());
    log.restore(snap(80, 2)).unwrap();
    log.append(&[e(81, 2)]).unwrap();
    issue(&mut log, &pipeline); // snapshot 80 + entry 81
    log.append(&[e(82, 2)]).unwrap();
    issue(&mut log, &pipeline); // entry 82
    writer.release_all();
    let acks = pipeline.completed().unwrap();
    assert_eq!(
        acks[1].snapshot,
        Some(EntryId::new(2, 80)),
        "the later ack names it too"
    );
    log.on_persisted(&acks[1]).unwrap();
    assert_eq!(log.last_index().unwrap(), 82);
    assert!(log.unstable().snapshot().is_none() && log.unstable().entries().is_empty());
    log.on_persisted(&acks[0]).unwrap();
    assert_eq!((log.last_index().unwrap(), log.applied()), (82, 80));
}
