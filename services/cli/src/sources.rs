//! Where manifests come from (`-f`: files, folders, `-` for stdin, http(s) URLs) and decoding
//! all of them before anything is written.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use bosun_api::codec::{self, Manifest};

/// One input's text and the name diagnostics use for it.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub text: String,
}

/// The files behind `-f` arguments: a file as given, a folder's `*.yaml`, `*.yml` and
/// `*.json` files sorted by name (descending into subfolders with `recursive`), `-` and URLs
/// as they are.
pub fn expand(args: &[String], recursive: bool) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for arg in args {
        if arg == "-" || is_url(arg) {
            out.push(arg.clone());
            continue;
        }
        let path = Path::new(arg);
        let meta = std::fs::metadata(path)
            .with_context(|| format!("the path \"{arg}\" does not exist"))?;
        if meta.is_dir() {
            let mut files = Vec::new();
            walk(path, recursive, &mut files)
                .with_context(|| format!("cannot read the folder \"{arg}\""))?;
            if files.is_empty() {
                bail!("the folder \"{arg}\" has no *.yaml, *.yml or *.json files");
            }
            out.extend(files.into_iter().map(|p| p.display().to_string()));
        } else {
            out.push(arg.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if recursive {
                walk(&p, recursive, out)?;
            }
        } else if is_manifest_file(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// Whether a folder entry is a manifest by its extension.
pub fn is_manifest_file(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// Whether `-f` names a URL.
pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// Reads every input (files, stdin, URLs).
pub async fn read_all(args: &[String], recursive: bool) -> anyhow::Result<Vec<Source>> {
    let mut out = Vec::new();
    for name in expand(args, recursive)? {
        let text = if name == "-" {
            tokio::task::spawn_blocking(|| {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map(|_| s)
            })
            .await?
            .context("cannot read standard input")?
        } else if is_url(&name) {
            let url = name.clone();
            tokio::task::spawn_blocking(move || fetch(&url)).await??
        } else {
            std::fs::read_to_string(&name).with_context(|| format!("cannot read {name}"))?
        };
        out.push(Source { name, text });
    }
    Ok(out)
}

/// GETs a manifest over http(s).
fn fetch(url: &str) -> anyhow::Result<String> {
    let mut resp = ureq::get(url)
        .call()
        .with_context(|| format!("cannot fetch {url}"))?;
    resp.body_mut()
        .read_to_string()
        .with_context(|| format!("cannot read the body of {url}"))
}

/// Decodes every source; on any problem returns every diagnostic of every source, so the
/// caller writes nothing.
pub fn decode_all(sources: &[Source]) -> Result<Vec<Manifest>, Vec<String>> {
    let mut manifests = Vec::new();
    let mut problems = Vec::new();
    for s in sources {
        match codec::decode_manifests(&s.name, &s.text) {
            Ok(ms) => manifests.extend(ms),
            Err(e) => problems.extend(e.diagnostics.iter().map(ToString::to_string)),
        }
    }
    if problems.is_empty() {
        Ok(manifests)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_expand_to_their_manifests_sorted_and_recursively_on_request() {
        let dir = std::env::temp_dir().join(format!("bosun-cli-sources-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        for f in ["b.yaml", "a.yml", "c.json", "notes.txt", "sub/d.yaml"] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        let d = dir.display().to_string();
        let flat = expand(std::slice::from_ref(&d), false).unwrap();
        let names: Vec<_> = flat
            .iter()
            .map(|p| p.trim_start_matches(&d).to_string())
            .collect();
        assert_eq!(names, vec!["/a.yml", "/b.yaml", "/c.json"]);
        let deep = expand(std::slice::from_ref(&d), true).unwrap();
        assert_eq!(deep.len(), 4);
        assert!(deep[3].ends_with("sub/d.yaml"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn stdin_and_urls_pass_through_and_missing_files_are_errors() {
        let args = vec!["-".to_string(), "https://example.com/x.yaml".to_string()];
        assert_eq!(expand(&args, false).unwrap(), args);
        let err = expand(&["/nonexistent/x.yaml".to_string()], false).unwrap_err();
        assert!(err.to_string().contains("does not exist"));
    }
}
