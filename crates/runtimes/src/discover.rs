//! Finding real interpreter binaries on the host (never version-manager shims).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// True for an ELF executable: shims are shell scripts, and we skip them.
fn is_native_executable(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"\x7fELF"
}

fn real(path: &Path) -> Option<PathBuf> {
    let p = std::fs::canonicalize(path).ok()?;
    is_native_executable(&p).then_some(p)
}

fn path_dirs() -> Vec<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .filter(|d| !d.to_string_lossy().contains("shims"))
                .collect()
        })
        .unwrap_or_default()
}

/// `python3.x` interpreters by minor version. Preference: system locations, then pyenv's
/// real builds (newest patch), then `PATH`.
pub(crate) fn pythons() -> BTreeMap<u32, PathBuf> {
    let mut found = BTreeMap::new();
    for minor in 8..=15u32 {
        let exe = format!("python3.{minor}");
        let mut candidates: Vec<PathBuf> = ["/usr/bin", "/usr/local/bin"]
            .iter()
            .map(|d| Path::new(d).join(&exe))
            .collect();
        candidates.extend(
            pyenv_versions(minor)
                .into_iter()
                .map(|v| v.join("bin").join(&exe)),
        );
        candidates.extend(path_dirs().into_iter().map(|d| d.join(&exe)));
        if let Some(p) = candidates.iter().find_map(|c| real(c)) {
            found.insert(minor, p);
        }
    }
    found
}

fn pyenv_versions(minor: u32) -> Vec<PathBuf> {
    let root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".pyenv")));
    let Some(root) = root else { return vec![] };
    let prefix = format!("3.{minor}.");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root.join("versions"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let patch = name.strip_prefix(&prefix)?.parse().ok()?;
            Some((patch, e.path()))
        })
        .collect();
    versions.sort_by_key(|v| std::cmp::Reverse(v.0));
    versions.into_iter().map(|(_, p)| p).collect()
}

/// The host's `node`.
pub(crate) fn node() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = path_dirs().into_iter().map(|d| d.join("node")).collect();
    candidates.extend(
        ["/usr/bin/node", "/usr/local/bin/node"]
            .iter()
            .map(PathBuf::from),
    );
    candidates.iter().find_map(|c| real(c))
}
