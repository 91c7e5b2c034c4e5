//! Table tests of the frame codec.

use super::*;

const SALT: u64 = 0x5eed;

fn sample_records() -> Vec<Record<'static>> {
    let meta = SnapshotMeta {
        index: 9,
        term: 3,
        conf_state: Bytes::from_static(b"voters"),
    };
    let hs = HardState {
        term: 3,
        vote: 2,
        commit: 8,
    };
    vec![
        Record::Checkpoint(Checkpoint {
            compacted: EntryId::new(3, 9),
            last: EntryId::new(4, 12),
            hard_state: hs,
            snapshot: meta.clone(),
        }),
        Record::Checkpoint(Checkpoint::default()),
        Record::Batch(Cow::Owned(Batch::default())),
        Record::Batch(Cow::Owned(Batch {
            snapshot: Some(meta.clone()),
            entries: vec![
                Entry::new(10, 3, "a"),
                Entry::new(11, 4, ""),
                Entry::new(12, 4, "ccc"),
            ],
            hard_state: Some(hs),
        })),
        Record::Batch(Cow::Owned(Batch {
            snapshot: None,
            entries: vec![Entry::new(1, 1, vec![7u8; 1000])],
            hard_state: None,
        })),
        Record::Truncate { after: 41 },
        Record::Purge(EntryId::new(2, 17)),
        Record::Snapshot(Cow::Owned(meta)),
        Record::Seal {
            next_seq: 8,
            next_salt: u64::MAX,
        },
    ]
}

fn encoded(record: &Record<'_>, lsn: u64) -> Vec<u8> {
    let mut out = Vec::new();
    encode(&mut out, SALT, lsn, lsn - 1, record, Payloads::Copied).unwrap();
    out
}

#[test]
fn every_record_round_trips_and_fills_whole_aligned_frames() {
    for record in sample_records() {
        let bytes = encoded(&record, 5);
        assert_eq!(bytes.len() as u64 % FRAME_ALIGN, 0, "{record:?}");
        let frame = decode(&Bytes::from(bytes.clone()), SALT).unwrap();
        assert_eq!(
            frame,
            Frame {
                lsn: 5,
                synced_lsn: 4,
                record,
                len: bytes.len() as u64
            }
        );
    }
}

#[test]
fn batch_payloads_are_where_encode_says() {
    let entries = vec![Entry::new(3, 1, "first"), Entry::new(4, 1, "second")];
    let record = Record::Batch(Cow::Owned(Batch {
        entries,
        ..Batch::default()
    }));
    let mut out = vec![0xAA; 24]; // frames need not start at offset 0 of the buffer
    let at = encode(&mut out, SALT, 1, 0, &record, Payloads::Copied)
        .unwrap()
        .payloads_at as usize;
    assert_eq!(&out[24 + at..24 + at + 11], b"firstsecond");
}

/// A frame encoded with its payloads apart, written as the log writes it (the encoding up to
/// `payloads_at`, the payloads, the rest), is byte for byte the frame `encode` makes.
#[test]
fn a_frame_with_its_payloads_apart_is_the_same_frame() {
    for (k, record) in sample_records().iter().enumerate() {
        let mut apart = vec![0xAA; 24]; // frames need not start at offset 0 of the buffer
        let layout = encode(&mut apart, SALT, 5, 4, record, Payloads::Apart).unwrap();
        let at = 24 + layout.payloads_at as usize;
        let mut frame = apart[24..at].to_vec();
        for entry in record.payloads() {
            frame.extend_from_slice(&entry.data);
        }
        frame.extend_from_slice(&apart[at..]);
        assert_eq!(frame, encoded(record, 5), "record {k}");
        assert_eq!(layout.len, frame.len() as u64, "record {k}");
        let left_out = layout.payloads == Payloads::Apart;
        assert_eq!(left_out, !record.payloads().is_empty(), "record {k}");
    }
}

#[test]
fn every_flipped_bit_is_caught() {
    for record in sample_records().into_iter().take(4) {
        let bytes = encoded(&record, 2);
        for bit in 0..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode(&Bytes::from(bad), SALT).is_err(),
                "bit {bit} of {record:?}"
            );
        }
    }
}

#[test]
fn malformed_frames_say_why() {
    let good = encoded(&Record::Truncate { after: 1 }, 2);
    let with_kind = |kind: u8| {
        let mut b = good.clone();
        b[KIND_OFFSET] = kind;
        let crc = checksum(SALT, &b[BODY_CRC_OFFSET..FRAME_HEADER_LEN]);
        b[..4].copy_from_slice(&crc.to_le_bytes());
        b
    };
    let mut long_body = good.clone();
    long_body[BODY_LEN_OFFSET..BODY_LEN_OFFSET + 4].copy_from_slice(&1000u32.to_le_bytes());
    let crc = checksum(SALT, &long_body[BODY_CRC_OFFSET..FRAME_HEADER_LEN]);
    long_body[..4].copy_from_slice(&crc.to_le_bytes());
    // (bytes, salt, check of the error)
    type Check = fn(&DecodeError) -> bool;
    let cases: Vec<(Vec<u8>, u64, Check)> = vec![
        (good[..20].to_vec(), SALT, |e| {
            matches!(
                e,
                DecodeError::Truncated {
                    needed: 32,
                    available: 20
                }
            )
        }),
        (good.clone(), SALT + 1, |e| {
            matches!(e, DecodeError::Checksum { .. })
        }),
        (vec![0u8; 64], SALT, |e| {
            matches!(e, DecodeError::Checksum { stored: 0, .. })
        }),
        (with_kind(0), SALT, |e| {
            matches!(e, DecodeError::UnknownRecordType { found: 0 })
        }),
        (with_kind(200), SALT, |e| {
            matches!(e, DecodeError::UnknownRecordType { found: 200 })
        }),
        (with_kind(Kind::Seal as u8), SALT, |e| {
            matches!(
                e,
                DecodeError::Truncated {
                    needed: 8,
                    available: 0
                }
            )
        }),
        (long_body, SALT, |e| {
            matches!(e, DecodeError::Truncated { .. })
        }),
    ];
    for (i, (bytes, salt, want)) in cases.into_iter().enumerate() {
        let err = decode(&Bytes::from(bytes), salt).unwrap_err();
        assert!(want(&err), "case {i}: {err:?}");
    }
}

#[test]
fn encoder_refuses_a_proof_the_decoder_would_refuse() {
    let record = Record::Truncate { after: 1 };
    let proof_error = DecodeError::Malformed {
        what: "durability proof at or past its own frame",
    };
    // (lsn, synced_lsn, encodes)
    let cases = [
        (5, 4, true),
        (5, 0, true),
        (5, 5, false),
        (5, 6, false),
        (0, 0, false),
    ];
    for (lsn, synced_lsn, encodes) in cases {
        let mut out = vec![0xAB];
        let result = encode(&mut out, SALT, lsn, synced_lsn, &record, Payloads::Copied);
        if encodes {
            assert!(result.is_ok(), "({lsn}, {synced_lsn}): {result:?}");
            let frame = decode(&Bytes::copy_from_slice(&out[1..]), SALT).unwrap();
            assert_eq!((frame.lsn, frame.synced_lsn), (lsn, synced_lsn));
        } else {
            assert_eq!(result, Err(proof_error), "({lsn}, {synced_lsn})");
            assert_eq!(out, [0xAB], "a refused frame leaves `out` unchanged");
        }
    }
    // The decoder's side of the same rule: a frame patched to claim its own Lsn.
    let mut patched = encoded(&record, 5);
    patched[SYNCED_LSN_OFFSET..FRAME_HEADER_LEN].copy_from_slice(&5u64.to_le_bytes());
    let crc = checksum(SALT, &patched[BODY_CRC_OFFSET..FRAME_HEADER_LEN]);
    patched[..4].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(
        decode(&Bytes::from(patched), SALT).unwrap_err(),
        proof_error
    );
}

#[test]
fn decoding_any_prefix_or_garbage_never_panics() {
    for record in sample_records() {
        let bytes = encoded(&record, 9);
        for len in 0..bytes.len() {
            assert!(decode(&Bytes::from(bytes[..len].to_vec()), SALT).is_err());
        }
    }
    let mut state = 1u64;
    for _ in 0..2000 {
        let garbage: Vec<u8> = (0..96)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                (state >> 56) as u8
            })
            .collect();
        assert!(decode(&Bytes::from(garbage), SALT).is_err());
    }
}

/// The block-at-a-time zero scans against a plain byte loop, with non-zero bytes at every
/// position around the block boundaries and lengths that leave every possible remainder.
#[test]
fn zero_scans_agree_with_a_byte_loop() {
    let naive_first = |b: &[u8]| b.iter().position(|&x| x != 0);
    let naive_last = |b: &[u8]| b.iter().rposition(|&x| x != 0);
    for len in 0..=200usize {
        let zeros = vec![0u8; len];
        assert_eq!(first_nonzero(&zeros), None, "len {len}");
        assert_eq!(last_nonzero(&zeros), None, "len {len}");
        assert!(is_zero(&zeros));
        for at in 0..len {
            let mut one = zeros.clone();
            one[at] = 0x80;
            assert_eq!(first_nonzero(&one), Some(at), "len {len} at {at}");
            assert_eq!(last_nonzero(&one), Some(at), "len {len} at {at}");
            assert!(!is_zero(&one));
            // A second byte further on: first and last must pick different ones.
            for later in [at + 1, at + 63, at + 64, at + 65] {
                if later < len {
                    let mut two = one.clone();
                    two[later] = 1;
                    assert_eq!(first_nonzero(&two), naive_first(&two), "{len} {at} {later}");
                    assert_eq!(last_nonzero(&two), naive_last(&two), "{len} {at} {later}");
                }
            }
        }
    }
}
