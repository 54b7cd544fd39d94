//! The shipped unit file passes `systemd-analyze verify`.

use std::process::Command;

#[test]
fn unit_file_verifies() {
    let Some(analyze) = crate::helpers::appliance::which("systemd-analyze") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "systemd-analyze is missing (Debian package systemd); CI must run this check"
        );
        eprintln!("systemd-analyze not installed; skipping outside CI");
        return;
    };
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../systemd/daarion.service"
    ))
    .unwrap();
    for needed in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "User=daarion",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/daarion",
        "NoNewPrivileges=true",
        "PrivateTmp=true",
    ] {
        assert!(unit.contains(needed), "unit lacks {needed}");
    }
    // verify checks that ExecStart's binary exists: point it at the one under test.
    let dir = std::env::temp_dir().join(format!("daarion-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("daarion.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/daarion", env!("CARGO_BIN_EXE_daarion")),
    )
    .unwrap();
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
