//! The README's first screen is a contract: its example is the code of `examples/basic.rs`, and
//! its set-up commands are the ones CI and the command line actually take.

use std::path::Path;

use raftwal::fs::{Fs, OpenMode, StdFs};

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    let file = StdFs.open(&path, OpenMode::ReadOnly).unwrap();
    let mut buf = vec![0; file.len().unwrap() as usize];
    file.read_exact_at(&mut buf, 0).unwrap();
    String::from_utf8(buf).unwrap()
}

#[test]
fn readme_example_is_examples_basic() {
    let readme = read("README.md");
    let example = read("examples/basic.rs");
    let block = readme
        .split("```rust\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README has a rust code block");
    // The example file is the block plus its leading doc comment.
    let code: String = example
        .lines()
        .skip_while(|l| l.starts_with("//!") || l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(block, code, "README example and examples/basic.rs differ");
}

#[test]
fn readme_setup_commands_are_the_ones_ci_runs() {
    let readme = read("README.md");
    let ci = read(".ci/run");
    assert!(
        readme.contains("cargo run --release -- bench"),
        "set-up command 1 is gone"
    );
    let test_command = "cargo test --workspace --all-features";
    assert!(readme.contains(test_command), "set-up command 2 is gone");
    assert!(
        ci.contains(test_command),
        ".ci/run no longer runs the README's test command"
    );
}
