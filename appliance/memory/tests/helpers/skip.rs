//! A check that cannot run here: a failure under `CI=true`, otherwise a note on stderr and a line
//! in the file `DAARION_TEST_SKIPS` names, which `tests/run.sh` reports at the end of the run (a
//! passing test's stderr is never shown, so the note alone would go unseen).

use std::io::Write as _;

/// `what` is not exercised because of `why`; `needs` says what provides it.
#[track_caller]
pub fn skipped(what: &str, why: &str, needs: &str) {
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "{what}: {why}; CI must exercise it ({needs})"
    );
    eprintln!("{what} is not exercised: {why} ({needs})");
    if let Ok(path) = std::env::var("DAARION_TEST_SKIPS") {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("DAARION_TEST_SKIPS={path}: {e}"));
        writeln!(file, "daarion-memory: {what} skipped: {why}").unwrap();
    }
}
