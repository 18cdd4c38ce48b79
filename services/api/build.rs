//! Compiles `proto/bosun/v1/*.proto` with the pure-Rust protox compiler (no protoc needed)
//! and keeps the descriptor set so the codec can walk the schema at run time.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files: Vec<PathBuf> = std::fs::read_dir(root.join("bosun/v1"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    let mut files: Vec<PathBuf> = files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "proto"))
        .collect();
    files.sort();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let fds = protox::compile(&files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("bosun_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .bytes(".bosun.v1.WatchEvent.object")
        // Every kind lives in one `Object` enum: boxing its variants keeps an Object (and
        // each entry of an informer cache) the size of a pointer instead of the largest kind.
        .boxed(".bosun.v1.Object.object")
        // A pod's spec is the bulk of a Pod; a cache that keeps metadata only (the gc's,
        // `Object::retain_identity_only`) then holds a pointer, not the spec's inline size.
        .boxed(".bosun.v1.Pod.spec")
        // Rarely set, large when inline: a Container was 1,624 B with its three probes, its
        // lifecycle and security context inline (~400 B boxed), and every decoded pod, in
        // every cache and request, carries its containers.
        .boxed(".bosun.v1.Container.readiness_probe")
        .boxed(".bosun.v1.Container.liveness_probe")
        .boxed(".bosun.v1.Container.startup_probe")
        .boxed(".bosun.v1.Container.lifecycle")
        .boxed(".bosun.v1.Container.security_context")
        .boxed(".bosun.v1.PodSpec.affinity")
        .boxed(".bosun.v1.PodSpec.security_context")
        .boxed(".bosun.v1.PodSpec.dns_config")
        .btree_map(".")
        .compile_fds(fds)?;
    Ok(())
}
