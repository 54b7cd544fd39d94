//! The admin web UI is built by npm (`web-ui/`) and embedded with rust-embed; without the built
//! files the binary would serve no UI, so the build stops here and says how to make them.

fn main() {
    // Read at run time: `env!` would bake in the path of whichever checkout first compiled this
    // script, and a target dir shared between checkouts reuses the compiled script.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dist = std::path::Path::new(&manifest_dir).join("../web-ui/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    if !dist.join("index.html").is_file() {
        panic!(
            "\n\nThe admin web UI is not built: {} has no index.html.\n\
             Build it first (Node.js 20+ and npm):\n\n    \
             npm --prefix web-ui ci && npm --prefix web-ui run build\n\n\
             (tests/run.sh and the installer do this for you.)\n",
            dist.display()
        );
    }
}
