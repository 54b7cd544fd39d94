//! `daarion child-exec --parent PID -- PROGRAM ARGS…`: how the supervisor starts every child.
//!
//! It asks the kernel to send SIGTERM when the supervisor dies (PR_SET_PDEATHSIG, which survives
//! the exec that follows), checks the supervisor did not already die before that, and replaces
//! itself with the program. So a `kill -9` of the supervisor still takes every child with it,
//! without any unsafe `pre_exec` code in the supervisor.

use std::ffi::CString;
use std::process::ExitCode;

use nix::sys::signal::Signal;
use nix::unistd::{Pid, execvp, getppid};

pub fn run(parent: i32, program: &str, args: &[String]) -> ExitCode {
    if let Err(e) = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM) {
        eprintln!("daarion child-exec: cannot set the parent-death signal: {e}");
        return ExitCode::FAILURE;
    }
    if getppid() != Pid::from_raw(parent) {
        eprintln!("daarion child-exec: supervisor {parent} is gone; not starting {program}");
        return ExitCode::FAILURE;
    }
    let argv: Result<Vec<CString>, _> = std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .map(CString::new)
        .collect();
    let argv = match argv {
        Ok(argv) => argv,
        Err(_) => {
            eprintln!("daarion child-exec: an argument contains a NUL byte");
            return ExitCode::FAILURE;
        }
    };
    // Only returns on failure.
    let err = execvp(&argv[0], &argv).unwrap_err();
    eprintln!("daarion child-exec: cannot run {program}: {err}");
    ExitCode::from(127)
}
