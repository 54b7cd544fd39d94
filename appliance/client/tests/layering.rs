//! The import graph keeps the rule the architecture rests on: services never import each other;
//! they talk through contract crates (a service's wire types and client) that stand only on the
//! shared libraries. A new `[dependencies]` entry that breaks it fails here, naming the edge.

use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tier {
    /// Libraries every process may link; they link only each other.
    Shared,
    /// One service's wire types and client, linked by the service and its callers.
    Contract,
    /// A native model engine in a process of its own.
    Worker,
    /// A service: links contracts and shared libraries, never another service.
    Service,
    /// The `daarion` binary, which runs every service.
    Binary,
}

fn tier(name: &str) -> Tier {
    match name {
        "daarion" => Tier::Binary,
        "daarion-control-plane"
        | "daarion-gateway"
        | "daarion-memory"
        | "daarion-router"
        | "daarion-swapper"
        | "daarion-ingest"
        | "daarion-parser"
        | "daarion-crews"
        | "daarion-crews-worker" => Tier::Service,
        "daarion-control-client"
        | "daarion-router-client"
        | "daarion-memory-client"
        | "daarion-swapper-client"
        | "daarion-ingest-client"
        | "daarion-crews-client" => Tier::Contract,
        n if n.ends_with("-worker") => Tier::Worker,
        _ => Tier::Shared,
    }
}

/// Whether a crate of tier `from` may list a crate of tier `to` in `[dependencies]`.
fn allowed(from: Tier, to: Tier) -> bool {
    match from {
        Tier::Binary => true,
        Tier::Service => matches!(to, Tier::Contract | Tier::Shared),
        Tier::Contract => matches!(to, Tier::Contract | Tier::Shared),
        Tier::Worker | Tier::Shared => to == Tier::Shared,
    }
}

/// Every workspace crate and the `daarion-*` crates in its `[dependencies]`.
fn workspace() -> BTreeMap<String, Vec<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut manifests = vec![root.join("supervisor/Cargo.toml")];
    for entry in std::fs::read_dir(root.join("appliance")).unwrap() {
        let manifest = entry.unwrap().path().join("Cargo.toml");
        if manifest.exists() {
            manifests.push(manifest);
        }
    }
    manifests
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let manifest: toml::Table = text.parse().unwrap();
            let name = manifest["package"]["name"].as_str().unwrap().to_owned();
            let deps = manifest
                .get("dependencies")
                .and_then(|d| d.as_table())
                .map(|d| {
                    d.keys()
                        .filter(|k| k.starts_with("daarion"))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            (name, deps)
        })
        .collect()
}

#[test]
fn services_never_import_each_other_and_contracts_stand_on_shared_libraries() {
    let crates = workspace();
    assert!(crates.len() > 20, "found only {crates:?}");
    let broken: Vec<String> = crates
        .iter()
        .flat_map(|(from, deps)| {
            deps.iter()
                .filter(|to| !allowed(tier(from), tier(to)))
                .map(move |to| format!("{from} ({:?}) → {to} ({:?})", tier(from), tier(to)))
        })
        .collect();
    assert!(
        broken.is_empty(),
        "dependencies against the layering: {broken:#?}"
    );
}

#[test]
fn the_rule_itself_refuses_what_it_must() {
    for (from, to, ok) in [
        ("daarion-gateway", "daarion-router", false),
        ("daarion-crews-worker", "daarion-crews", false),
        ("daarion-crews-worker", "daarion-crews-client", true),
        ("daarion-router", "daarion-router-client", true),
        ("daarion-memory-client", "daarion-memory", false),
        ("daarion-bus", "daarion-control-client", false),
        ("daarion-llama-worker", "daarion-swapper", false),
        ("daarion-llama-worker", "daarion-worker-io", true),
        ("daarion", "daarion-gateway", true),
    ] {
        assert_eq!(allowed(tier(from), tier(to)), ok, "{from} → {to}");
    }
}
