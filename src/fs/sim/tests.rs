//! The model itself, checked: what must survive, what may vanish, and how faults behave.

use std::io;
use std::path::Path;

use super::*;

const DIR: &str = "/d";

fn path(name: &str) -> PathBuf {
    Path::new(DIR).join(name)
}

fn fresh() -> SimFs {
    fresh_seeded(1)
}

/// A file system with [`DIR`] created and its name synced; failed syncs driven by `seed`.
fn fresh_seeded(seed: u64) -> SimFs {
    let fs = SimFs::new(seed);
    fs.create_dir_all(Path::new(DIR)).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    fs
}

/// Creates directory `dir` (its name not synced) holding file `f` = `x`, data and name synced.
fn dir_with_synced_file(fs: &SimFs, dir: &Path) {
    fs.create_dir_all(dir).unwrap();
    let file = fs.open(&dir.join("f"), OpenMode::CreateNew).unwrap();
    file.write_all_at(b"x", 0).unwrap();
    file.sync_data().unwrap();
    fs.sync_dir(dir).unwrap();
}

/// Creates `name` holding `bytes`, with its data and its name synced.
fn durable_file(fs: &SimFs, name: &str, bytes: &[u8]) -> Arc<dyn File> {
    let file = fs.open(&path(name), OpenMode::CreateNew).unwrap();
    file.write_all_at(bytes, 0).unwrap();
    file.sync_data().unwrap();
    fs.sync_dir(Path::new(DIR)).unwrap();
    file
}

/// Every spec mode, with several seeds each: the images of one moment a test quantifies over.
fn images(fs: &SimFs) -> Vec<SimFs> {
    (0..400)
        .map(|seed| {
            let spec = ImageSpec::random(&mut SimRng::new(seed));
            fs.crash_image(&spec, seed)
        })
        .collect()
}

fn bytes_of(fs: &SimFs, name: &str) -> Option<Vec<u8>> {
    match fs.file_bytes(&path(name)) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn synced_data_and_names_survive_every_image() {
    let fs = fresh();
    let file = durable_file(&fs, "a", &[7; 3000]);
    // Unsynced changes on top, including a truncation and a removal of another name.
    file.write_all_at(&[9; 100], 3000).unwrap();
    for image in images(&fs) {
        let got = bytes_of(&image, "a").expect("a synced name vanished");
        assert_eq!(got[..3000], [7; 3000]);
    }
}

#[test]
fn unsynced_writes_may_vanish_survive_or_tear() {
    let fs = fresh();
    let file = durable_file(&fs, "a", b"");
    let new = vec![5u8; 4096];
    file.write_all_at(&new, 0).unwrap();

    assert_eq!(
        bytes_of(&fs.crash_image(&ImageSpec::NOTHING, 0), "a").unwrap(),
        b""
    );
    assert_eq!(
        bytes_of(&fs.crash_image(&ImageSpec::EVERYTHING, 0), "a").unwrap(),
        new
    );

    let torn = ImageSpec {
        survival: Survival::Subset,
        ..ImageSpec::NOTHING
    };
    let mut hole_then_data = false;
    for seed in 0..64 {
        let got = bytes_of(&fs.crash_image(&torn, seed), "a").unwrap();
        for (i, sector) in got.chunks(512).enumerate() {
            // Each sector is wholly old (zeros) or wholly new.
            assert!(sector.iter().all(|&b| b == 0) || sector.iter().all(|&b| b == 5));
            let later_new = got.chunks(512).skip(i + 1).any(|s| s[0] == 5);
            hole_then_data |= sector[0] == 0 && later_new;
        }
    }
    assert!(
        hole_then_data,
        "no image kept a later sector without an earlier one"
    );
}

#[test]
fn length_moves_independently_of_content() {
    let fs = fresh();
    let file = durable_file(&fs, "a", b"");
    file.write_all_at(&[5; 1024], 0).unwrap();
    let torn = ImageSpec {
        survival: Survival::Subset,
        ..ImageSpec::NOTHING
    };
    let long_but_empty = (0..64).any(|seed| {
        let got = bytes_of(&fs.crash_image(&torn, seed), "a").unwrap();
        got.len() == 1024 && got.iter().all(|&b| b == 0)
    });
    assert!(long_but_empty, "no image grew the file without its data");
}

#[test]
fn garbage_and_stale_fill_show_up_where_data_did_not_land() {
    let fs = fresh();
    durable_file(&fs, "other", &[0xab; 1024]);
    let file = durable_file(&fs, "a", b"");
    file.write_all_at(&[5; 1024], 0).unwrap();
    for (fill, expect) in [(Fill::Stale, Some(0xab)), (Fill::Garbage, None)] {
        let spec = ImageSpec {
            survival: Survival::AllButOne,
            fill,
            ..ImageSpec::NOTHING
        };
        let seen = (0..64).any(|seed| {
            let got = bytes_of(&fs.crash_image(&spec, seed), "a").unwrap();
            got.chunks(512).any(|s| match expect {
                Some(b) => s.iter().all(|&x| x == b),
                None => s.iter().any(|&x| x != 0 && x != 5),
            })
        });
        assert!(seen, "{fill:?} never showed");
    }
}

#[test]
fn unsynced_create_vanishes_even_with_synced_data() {
    let fs = fresh();
    let file = fs.open(&path("a"), OpenMode::CreateNew).unwrap();
    file.write_all_at(b"data", 0).unwrap();
    file.sync_data().unwrap();
    assert_eq!(bytes_of(&fs.crash_image(&ImageSpec::NOTHING, 0), "a"), None);
    fs.sync_dir(Path::new(DIR)).unwrap();
    for image in images(&fs) {
        assert_eq!(bytes_of(&image, "a").as_deref(), Some(&b"data"[..]));
    }
}

#[test]
fn rename_is_atomic_and_may_be_undone() {
    let fs = fresh();
    durable_file(&fs, "new.tmp", b"NEW");
    durable_file(&fs, "cur", b"OLD");
    fs.rename(&path("new.tmp"), &path("cur")).unwrap();
    let (mut undone, mut done) = (false, false);
    for image in images(&fs) {
        match (bytes_of(&image, "new.tmp"), bytes_of(&image, "cur")) {
            (Some(tmp), Some(cur)) if tmp == b"NEW" && cur == b"OLD" => undone = true,
            (None, Some(cur)) if cur == b"NEW" => done = true,
            other => panic!("rename half done: {other:?}"),
        }
    }
    assert!(undone && done, "undone {undone}, done {done}");
}

#[test]
fn unsynced_truncation_and_removal_may_be_undone() {
    let fs = fresh();
    let file = durable_file(&fs, "a", &[3; 2048]);
    durable_file(&fs, "b", b"b");
    file.set_len(10).unwrap();
    fs.remove_file(&path("b")).unwrap();
    assert_eq!(bytes_of(&fs, "b"), None);
    let image = fs.crash_image(&ImageSpec::NOTHING, 0);
    assert_eq!(bytes_of(&image, "a").unwrap(), [3; 2048]);
    assert_eq!(bytes_of(&image, "b").as_deref(), Some(&b"b"[..]));
    let image = fs.crash_image(&ImageSpec::EVERYTHING, 0);
    assert_eq!(bytes_of(&image, "a").unwrap(), [3; 10]);
    assert_eq!(bytes_of(&image, "b"), None);
}

#[test]
fn synced_removal_and_dir_sync_are_final() {
    let fs = fresh();
    durable_file(&fs, "b", b"b");
    fs.remove_file(&path("b")).unwrap();
    fs.sync_dir(Path::new(DIR)).unwrap();
    assert!(
        images(&fs)
            .iter()
            .all(|image| bytes_of(image, "b").is_none())
    );
}

#[test]
fn failed_sync_loses_data_and_the_next_sync_lies() {
    // fsyncgate: the failed sync keeps an arbitrary part, the retry returns Ok, reads still see
    // the new bytes, and the lost part stays lost.
    let mut lost_after_ok = false;
    for seed in 0..32 {
        let fs = fresh_seeded(seed);
        let file = durable_file(&fs, "a", b"");
        file.write_all_at(&[1; 4096], 0).unwrap();
        fs.inject(Fault::nth(OpKind::SyncData, 0, FaultError::Eio));
        assert_eq!(file.sync_data().unwrap_err().raw_os_error(), Some(5));
        file.sync_data().unwrap();
        assert_eq!(fs.file_bytes(&path("a")).unwrap(), [1; 4096]);
        let durable = bytes_of(&fs.crash_image(&ImageSpec::NOTHING, 0), "a").unwrap();
        lost_after_ok |= durable != [1; 4096];
    }
    assert!(lost_after_ok, "a failed sync never lost anything");
}

#[test]
fn faults_fire_on_the_nth_call_of_their_kind_and_sticky_ones_stay() {
    let fs = fresh();
    let file = durable_file(&fs, "a", b"");
    fs.inject(Fault::nth(OpKind::Write, 2, FaultError::Eio));
    // Calls of other kinds, however many, neither fire nor disarm it.
    for _ in 0..3 {
        file.sync_data().unwrap();
    }
    let results: Vec<bool> = (0..5).map(|i| file.write_all_at(b"x", i).is_ok()).collect();
    assert_eq!(results, [true, true, false, true, true]);

    fs.inject(Fault::nth(OpKind::Rename, 1, FaultError::Eio).sticky());
    let names = ["a", "b", "c", "d"];
    let results: Vec<bool> = names
        .windows(2)
        .map(|w| fs.rename(&path(w[0]), &path(w[1])).is_ok())
        .collect();
    assert_eq!(results, [true, false, false]);
    fs.clear_faults();
    fs.rename(&path("b"), &path("e")).unwrap();
}

#[test]
fn no_space_write_is_short_by_whole_sectors() {
    // (offset, length, bytes the write leaves in the file from `offset`)
    let cases = [
        (0, 2048, 1024),
        (100, 2048, 924),
        (0, 1000, 0),
        (600, 300, 0),
    ];
    for (offset, len, kept) in cases {
        let fs = fresh();
        let file = durable_file(&fs, "a", b"");
        fs.inject(Fault::nth(OpKind::Write, 0, FaultError::NoSpace));
        let err = file.write_all_at(&vec![4; len], offset).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        let bytes = fs.file_bytes(&path("a")).unwrap();
        let from = (offset as usize).min(bytes.len());
        assert_eq!(
            bytes[from..],
            vec![4; kept][..],
            "write of {len} at {offset}"
        );
    }
}

#[test]
fn capture_records_the_state_before_each_chosen_operation() {
    let fs = fresh();
    let file = durable_file(&fs, "a", b"");
    fs.capture(Box::new(|op, _| op.is_sync()));
    for i in 0..3u8 {
        file.write_all_at(&[i + 1; 10], u64::from(i) * 10).unwrap();
        file.sync_data().unwrap();
    }
    let points = fs.take_crash_points();
    assert_eq!(points.len(), 3);
    for (i, point) in points.iter().enumerate() {
        assert_eq!(point.op, Some(OpKind::SyncData));
        // Before sync i, writes 0..i are synced, write i is not.
        let nothing = bytes_of(&point.image(&ImageSpec::NOTHING, 0), "a").unwrap();
        assert_eq!(nothing.len(), i * 10);
        let everything = bytes_of(&point.image(&ImageSpec::EVERYTHING, 0), "a").unwrap();
        assert_eq!(everything.len(), (i + 1) * 10);
    }
    assert!(points.windows(2).all(|w| w[0].seq < w[1].seq));
}

#[test]
fn images_are_fixed_by_their_seed() {
    let fs = fresh();
    let file = durable_file(&fs, "a", b"");
    file.write_all_at(&[8; 5000], 0).unwrap();
    let spec = ImageSpec {
        survival: Survival::Subset,
        fill: Fill::Garbage,
        ..ImageSpec::NOTHING
    };
    let a = bytes_of(&fs.crash_image(&spec, 42), "a");
    assert_eq!(a, bytes_of(&fs.crash_image(&spec, 42), "a"));
    assert!((0..8).any(|s| bytes_of(&fs.crash_image(&spec, s), "a") != a));
}

#[test]
fn lock_is_exclusive_until_dropped() {
    let fs = fresh();
    let guard = fs.lock(&path("LOCK")).unwrap();
    let err = fs.lock(&path("LOCK")).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    drop(guard);
    fs.lock(&path("LOCK")).unwrap();
}

#[test]
fn reads_past_the_end_and_read_only_writes_fail() {
    let fs = fresh();
    durable_file(&fs, "a", b"abc");
    let file = fs.open(&path("a"), OpenMode::ReadOnly).unwrap();
    let mut buf = [0; 4];
    let err = file.read_exact_at(&mut buf, 0).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    assert_eq!(file.map_readonly(3).unwrap(), &b"abc"[..]);
    assert!(file.map_readonly(4).is_err());
    assert!(file.write_all_at(b"x", 0).is_err());
    assert!(file.write_all_at(b"x", MAX_FILE_LEN).is_err());
}

#[test]
fn damage_changes_what_survives_and_what_is_read() {
    let fs = fresh();
    durable_file(&fs, "a", &[0; 8]);
    fs.damage(&path("a"), |b| b[3] ^= 0x10).unwrap();
    let expect = [0, 0, 0, 0x10, 0, 0, 0, 0];
    assert_eq!(bytes_of(&fs, "a").unwrap(), expect);
    assert_eq!(
        bytes_of(&fs.crash_image(&ImageSpec::NOTHING, 0), "a").unwrap(),
        expect
    );
}

/// Syncs [`DIR`] and checks that `dir/f` survives every image.
fn assert_parent_sync_keeps(fs: &SimFs, dir: &Path) {
    fs.sync_dir(Path::new(DIR)).unwrap();
    for image in images(fs) {
        assert_eq!(image.file_bytes(&dir.join("f")).unwrap(), b"x");
    }
}

/// A directory's name is an entry of its parent: it vanishes in a power cut until the parent
/// is synced, and everything in it with it.
#[test]
fn a_directory_needs_its_parent_synced() {
    let fs = fresh();
    let sub = Path::new(DIR).join("sub");
    dir_with_synced_file(&fs, &sub);
    let lost = fs.crash_image(&ImageSpec::NOTHING, 1);
    assert_eq!(
        lost.list_dir(&sub).map_err(|e| e.kind()),
        Err(io::ErrorKind::NotFound)
    );
    assert!(lost.list_dir(Path::new(DIR)).unwrap().is_empty());
    assert_parent_sync_keeps(&fs, &sub);
}

/// A directory rename is atomic, may be undone until the parent is synced, and carries the
/// directory's files.
#[test]
fn directory_rename_is_atomic_and_may_be_undone() {
    let fs = fresh();
    let (from, to) = (Path::new(DIR).join("tmp"), Path::new(DIR).join("log"));
    dir_with_synced_file(&fs, &from);
    fs.sync_dir(Path::new(DIR)).unwrap();
    fs.rename(&from, &to).unwrap();
    assert_eq!(fs.file_bytes(&to.join("f")).unwrap(), b"x");
    assert!(fs.list_dir(&from).is_err());
    let (mut old, mut new) = (0, 0);
    for image in images(&fs) {
        let names = image.list_dir(Path::new(DIR)).unwrap();
        match (
            image.file_bytes(&from.join("f")),
            image.file_bytes(&to.join("f")),
        ) {
            (Ok(bytes), Err(_)) if names == ["tmp"] => {
                assert_eq!(bytes, b"x");
                old += 1;
            }
            (Err(_), Ok(bytes)) if names == ["log"] => {
                assert_eq!(bytes, b"x");
                new += 1;
            }
            other => panic!("rename half done: {other:?} with {names:?}"),
        }
    }
    assert!(old > 0 && new > 0, "{old} undone, {new} kept");
    assert_parent_sync_keeps(&fs, &to);
}

/// A directory renamed over an empty one: where a power cut undoes the rename, the empty one
/// is back, listed and listable, beside the one that moved.
#[test]
fn a_directory_renamed_over_an_empty_one_comes_back_when_the_rename_is_undone() {
    let fs = fresh();
    let (from, to) = (Path::new(DIR).join("tmp"), Path::new(DIR).join("log"));
    fs.create_dir_all(&to).unwrap();
    dir_with_synced_file(&fs, &from);
    fs.sync_dir(Path::new(DIR)).unwrap();
    fs.rename(&from, &to).unwrap();
    let mut undone = 0;
    for image in images(&fs) {
        if image.file_bytes(&to.join("f")).is_err() {
            assert_eq!(image.list_dir(Path::new(DIR)).unwrap(), ["log", "tmp"]);
            assert_eq!(image.list_dir(&to).unwrap(), Vec::<String>::new());
            undone += 1;
        }
    }
    assert!(undone > 0, "no image undid the rename");
}

/// Only a directory without subdirectories moves, and only onto nothing or an empty one.
#[test]
fn directory_rename_refuses_what_the_model_cannot_undo() {
    let fs = fresh();
    let (a, b) = (Path::new(DIR).join("a"), Path::new(DIR).join("b"));
    fs.create_dir_all(&a.join("inner")).unwrap();
    fs.create_dir_all(&b).unwrap();
    assert_eq!(
        fs.rename(&a, &b).map_err(|e| e.kind()),
        Err(io::ErrorKind::Unsupported)
    );
    fs.open(&b.join("f"), OpenMode::CreateNew).unwrap();
    let c = Path::new(DIR).join("c");
    fs.create_dir_all(&c).unwrap();
    assert_eq!(
        fs.rename(&c, &b).map_err(|e| e.kind()),
        Err(io::ErrorKind::DirectoryNotEmpty)
    );
    assert_eq!(
        fs.remove_file(&c).map_err(|e| e.kind()),
        Err(io::ErrorKind::IsADirectory)
    );
}
