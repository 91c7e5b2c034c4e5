//! Runs the `raftwal` binary the way a person would and captures what it says.
#![allow(dead_code, reason = "each test file uses its own part")]

use std::ffi::OsStr;
use std::process::{Command, Stdio};

/// What one run of the binary printed and how it exited.
#[derive(Debug)]
pub struct Run {
    /// Exit code; `None` if a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `raftwal` with `args`, stdin closed.
pub fn raftwal<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = Command::new(env!("CARGO_BIN_EXE_raftwal"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the raftwal binary");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
