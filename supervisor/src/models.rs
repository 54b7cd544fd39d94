//! `daarion models list|verify|pull|rm`.

use std::process::ExitCode;

use daarion_config::Config;
use daarion_swapper::manifest::{FileState, Manifest, check_file, load_all};

use crate::cli::ModelsCommand;

pub async fn run(config: &Config, command: ModelsCommand) -> anyhow::Result<ExitCode> {
    let manifests = load_all(&config.models.manifests_dir)?;
    match &command {
        ModelsCommand::Pull { model } | ModelsCommand::Rm { model } => {
            let Some(manifest) = manifests.iter().find(|m| m.id == *model) else {
                eprintln!(
                    "daarion: no model `{model}` in {} (known: {})",
                    config.models.manifests_dir.display(),
                    manifests
                        .iter()
                        .map(|m| m.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                return Ok(ExitCode::FAILURE);
            };
            return if matches!(command, ModelsCommand::Pull { .. }) {
                pull(config, manifest).await
            } else {
                rm(config, manifest)
            };
        }
        ModelsCommand::List | ModelsCommand::Verify => {}
    }
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
        let models_dir = &config.general.models_dir;
        let kind = format!("{:?}", manifest.kind).to_lowercase();
        if manifest.online() {
            let endpoint = manifest.edge_endpoint();
            println!(
                "{:<16} {kind:<10} {:>10}  {endpoint}",
                manifest.id, "online"
            );
            continue;
        }
        // A vision model's projector and an image model's parts are files of their own,
        // listed under the model.
        let mut rows = Vec::new();
        for file in manifest.files(models_dir) {
            let (name, kind) = if file.role == "model" {
                (manifest.id.clone(), kind.clone())
            } else {
                (format!("  + {}", file.role), String::new())
            };
            rows.push((name, kind, file.path.clone(), check_file(&file, hash)?));
        }
        for (name, kind, path, state) in rows {
            let shown = match &state {
                FileState::Missing => "missing".to_owned(),
                FileState::Unverified { bytes } => format!("{} MiB", bytes >> 20),
                FileState::Verified { bytes } => format!("ok {} MiB", bytes >> 20),
                FileState::Mismatch { .. } => "MISMATCH".to_owned(),
            };
            println!("{name:<16} {kind:<10} {shown:>10}  {}", path.display());
            if let FileState::Mismatch { expected, actual } = state {
                println!("  sha256 expected {expected}\n  sha256 actual   {actual}");
                bad += 1;
            }
        }
    }
    Ok(if bad > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn pull(config: &Config, manifest: &Manifest) -> anyhow::Result<ExitCode> {
    let mut shown = 0u64;
    let result = daarion_swapper::download::download(manifest, &config.general.models_dir, |p| {
        // A line per tenth (or per 64 MiB when the size is unknown), not per chunk.
        let step = p.total.map_or(64 << 20, |t| (t / 10).max(1));
        if p.done >= shown + step || Some(p.done) == p.total {
            shown = p.done;
            match p.total {
                Some(total) => eprintln!(
                    "{}: {:>3}%  {} of {} MiB",
                    manifest.id,
                    p.done * 100 / total.max(1),
                    p.done >> 20,
                    total >> 20
                ),
                None => eprintln!("{}: {} MiB", manifest.id, p.done >> 20),
            }
        }
    })
    .await;
    match result {
        Ok(pulled) => {
            for file in &pulled {
                if file.resumed_from > 0 {
                    println!("resumed at {} MiB", file.resumed_from >> 20);
                }
                println!(
                    "{}: {} bytes in {}, sha256 {}{}",
                    manifest.id,
                    file.bytes,
                    file.path.display(),
                    file.sha256,
                    if file.verified {
                        " (matches the manifest)"
                    } else {
                        " (the manifest has no sha256 to check)"
                    }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("daarion: cannot pull {}: {e}", manifest.id);
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Only files inside the models directory: an engine the system installed is not ours to delete.
fn rm(config: &Config, manifest: &Manifest) -> anyhow::Result<ExitCode> {
    let models_dir = &config.general.models_dir;
    let mut code = ExitCode::SUCCESS;
    // Every file of the model, each only inside the models directory.
    for path in manifest.files(models_dir).into_iter().map(|f| f.path) {
        if !path.starts_with(models_dir) {
            eprintln!(
                "daarion: {} is outside {}; not removing it",
                path.display(),
                models_dir.display()
            );
            code = ExitCode::FAILURE;
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => println!("removed {}", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                println!("{} is not there", path.display())
            }
            Err(e) => {
                eprintln!("daarion: cannot remove {}: {e}", path.display());
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}
