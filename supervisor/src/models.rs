//! `daarion models list|verify`.

use std::process::ExitCode;

use daarion_config::Config;
use daarion_swapper::manifest::{FileState, check_file, load_all};

use crate::cli::ModelsCommand;

pub fn run(config: &Config, command: ModelsCommand) -> anyhow::Result<ExitCode> {
    let manifests = load_all(&config.models.manifests_dir)?;
    if manifests.is_empty() {
        println!(
            "no manifests in {} (models.manifests_dir)",
            config.models.manifests_dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let hash = matches!(command, ModelsCommand::Verify);
    let mut bad = 0;
    println!("{:<16} {:<10} {:>10}  FILE", "MODEL", "KIND", "STATE");
    for manifest in &manifests {
        let path = manifest.path(&config.general.models_dir);
        let state = check_file(manifest, &config.general.models_dir, hash)?;
        let shown = match &state {
            FileState::Missing => "missing".to_owned(),
            FileState::Unverified { bytes } => format!("{} MiB", bytes >> 20),
            FileState::Verified { bytes } => format!("ok {} MiB", bytes >> 20),
            FileState::Mismatch { .. } => "MISMATCH".to_owned(),
        };
        println!(
            "{:<16} {:<10} {:>10}  {}",
            manifest.id,
            format!("{:?}", manifest.kind).to_lowercase(),
            shown,
            path.display()
        );
        if let FileState::Mismatch { expected, actual } = state {
            println!("  sha256 expected {expected}\n  sha256 actual   {actual}");
            bad += 1;
        }
    }
    Ok(if bad > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
