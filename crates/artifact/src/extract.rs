//! Safe zip extraction (see the crate docs for the rules).

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::ArtifactError;

/// Bounds on what one package may unpack to.
#[derive(Debug, Clone, Copy)]
pub struct ExtractLimits {
    pub max_unzipped_bytes: u64,
    pub max_entries: usize,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        ExtractLimits {
            max_unzipped_bytes: nimbus_model::limits::UNZIPPED_MAX_BYTES,
            max_entries: 200_000,
        }
    }
}

const S_IFMT: u32 = 0o170_000;
const S_IFLNK: u32 = 0o120_000;

/// Unpacks `zip` into `dest` (which must exist and be empty) and returns the number of bytes
/// written. On error, `dest` may hold a partial tree: the caller discards it.
pub fn extract_zip(zip: &[u8], dest: &Path, limits: ExtractLimits) -> Result<u64, ArtifactError> {
    let mut archive = zip::ZipArchive::new(io::Cursor::new(zip))
        .map_err(|e| ArtifactError::InvalidZip(e.to_string()))?;
    if archive.len() > limits.max_entries {
        return Err(ArtifactError::TooManyEntries(limits.max_entries));
    }
    // The zip reader keeps one entry per name; a package that names a path twice (the classic
    // "link, then a file written through it" trick) is refused rather than half-read.
    if declared_entries(zip).is_some_and(|n| n != archive.len()) {
        return Err(ArtifactError::InvalidZip(
            "the archive contains duplicate entry names".into(),
        ));
    }
    let mut written: u64 = 0;
    let mut links: Vec<(PathBuf, PathBuf)> = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| ArtifactError::InvalidZip(e.to_string()))?;
        let raw_name = entry.name().to_string();
        let rel =
            confined_path(&raw_name).ok_or_else(|| ArtifactError::UnsafeEntry(raw_name.clone()))?;
        if rel.as_os_str().is_empty() {
            continue; // "./" or "/" alone: nothing to create
        }
        let target = dest.join(&rel);
        let mode = entry.unix_mode();
        if mode.is_some_and(|m| m & S_IFMT == S_IFLNK) {
            let mut link = String::new();
            entry
                .by_ref()
                .take(4096)
                .read_to_string(&mut link)
                .map_err(|e| ArtifactError::InvalidZip(e.to_string()))?;
            let link = PathBuf::from(link);
            if !link_stays_inside(&rel, &link) {
                return Err(ArtifactError::UnsafeEntry(raw_name));
            }
            links.push((target, link));
            continue;
        }
        if entry.is_dir() {
            fs::create_dir_all(&target).map_err(|e| ArtifactError::io(&target, e))?;
            continue;
        }
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(|e| ArtifactError::io(parent, e))?;
        }
        let executable = mode.is_some_and(|m| m & 0o111 != 0);
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
            .map_err(|e| match e.kind() {
                // A duplicate name inside the zip: refuse rather than pick one silently.
                io::ErrorKind::AlreadyExists => {
                    ArtifactError::InvalidZip(format!("duplicate entry '{raw_name}'"))
                }
                _ => ArtifactError::io(&target, e),
            })?;
        // Count what is really inflated, one byte past the budget, so a lying header
        // cannot smuggle a bomb through.
        let budget = limits.max_unzipped_bytes - written;
        let copied = io::copy(&mut entry.by_ref().take(budget + 1), &mut out)
            .map_err(|e| ArtifactError::InvalidZip(format!("{raw_name}: {e}")))?;
        written += copied;
        if written > limits.max_unzipped_bytes {
            return Err(ArtifactError::TooLargeUnzipped {
                limit: limits.max_unzipped_bytes,
            });
        }
        out.flush().map_err(|e| ArtifactError::io(&target, e))?;
        let perm = if executable { 0o555 } else { 0o444 };
        fs::set_permissions(&target, fs::Permissions::from_mode(perm))
            .map_err(|e| ArtifactError::io(&target, e))?;
    }
    // Links last: no file above was written through one.
    for (at, to) in links {
        if let Some(parent) = at.parent() {
            fs::create_dir_all(parent).map_err(|e| ArtifactError::io(parent, e))?;
        }
        symlink(&to, &at).map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => {
                ArtifactError::InvalidZip(format!("duplicate entry '{}'", at.display()))
            }
            _ => ArtifactError::io(&at, e),
        })?;
    }
    Ok(written)
}

/// The entry count in the end-of-central-directory record (`None` for zip64 or if absent).
fn declared_entries(zip: &[u8]) -> Option<usize> {
    const EOCD: [u8; 4] = [0x50, 0x4b, 0x05, 0x06];
    let search_from = zip.len().saturating_sub(22 + 65_535);
    let pos = (search_from..zip.len().saturating_sub(21))
        .rev()
        .find(|&i| zip[i..i + 4] == EOCD)?;
    let total = u16::from_le_bytes([zip[pos + 10], zip[pos + 11]]);
    (total != u16::MAX).then_some(usize::from(total))
}

/// The entry's path relative to the tree, or `None` when it is absolute or climbs out.
fn confined_path(name: &str) -> Option<PathBuf> {
    if name.contains('\0') {
        return None;
    }
    let path = Path::new(name);
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Whether a link at `rel` pointing to `target` resolves (lexically) inside the tree.
fn link_stays_inside(rel: &Path, target: &Path) -> bool {
    if target.is_absolute() || target.as_os_str().is_empty() {
        return false;
    }
    let mut depth: i64 = rel.components().count() as i64 - 1; // the link's directory
    for c in target.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use zip::write::SimpleFileOptions;

    fn build(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in entries {
            w.start_file(*name, SimpleFileOptions::default().unix_permissions(0o755))
                .unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn build_link(name: &str, target: &str) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.start_file("ok.txt", SimpleFileOptions::default())
            .unwrap();
        w.write_all(b"x").unwrap();
        w.add_symlink(name, target, SimpleFileOptions::default())
            .unwrap();
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn extracts_a_normal_package() {
        let dir = tempfile::tempdir().unwrap();
        let zip = build(&[
            ("app.py", b"def handler(e, c): return 1\n"),
            ("pkg/mod.py", b"x = 1\n"),
        ]);
        let n = extract_zip(&zip, dir.path(), ExtractLimits::default()).unwrap();
        assert_eq!(n, 34);
        assert_eq!(fs::read(dir.path().join("pkg/mod.py")).unwrap(), b"x = 1\n");
        let mode = fs::metadata(dir.path().join("app.py"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o555);
    }

    #[test]
    fn refuses_traversal_and_absolute_names() {
        for name in ["../evil", "a/../../evil", "/etc/evil"] {
            let dir = tempfile::tempdir().unwrap();
            let inner = dir.path().join("tree");
            fs::create_dir(&inner).unwrap();
            let err =
                extract_zip(&build(&[(name, b"x")]), &inner, ExtractLimits::default()).unwrap_err();
            assert!(
                matches!(err, ArtifactError::UnsafeEntry(_)),
                "{name}: {err}"
            );
            assert!(!dir.path().join("evil").exists());
        }
    }

    #[test]
    fn refuses_links_out_of_the_tree_but_keeps_inner_ones() {
        for target in ["/etc/passwd", "../../etc/passwd", "a/../../x"] {
            let dir = tempfile::tempdir().unwrap();
            let err = extract_zip(
                &build_link("link", target),
                dir.path(),
                ExtractLimits::default(),
            )
            .unwrap_err();
            assert!(matches!(err, ArtifactError::UnsafeEntry(_)), "{target}");
        }
        let dir = tempfile::tempdir().unwrap();
        extract_zip(
            &build_link("sub/link", "../ok.txt"),
            dir.path(),
            ExtractLimits::default(),
        )
        .unwrap();
        assert_eq!(fs::read(dir.path().join("sub/link")).unwrap(), b"x");
    }

    #[test]
    fn counts_real_bytes_against_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let zeros = vec![0u8; 1 << 20];
        let zip = build(&[("a", &zeros), ("b", &zeros)]);
        let limits = ExtractLimits {
            max_unzipped_bytes: (1 << 20) + 10,
            max_entries: 10,
        };
        let err = extract_zip(&zip, dir.path(), limits).unwrap_err();
        assert!(matches!(err, ArtifactError::TooLargeUnzipped { .. }));
    }

    #[test]
    fn refuses_garbage_and_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            extract_zip(
                b"definitely not a zip",
                dir.path(),
                ExtractLimits::default()
            ),
            Err(ArtifactError::InvalidZip(_))
        ));
        // Two entries named alike: rewrite the second name in place.
        let mut zip = build(&[("aaaa", b"1"), ("bbbb", b"2")]);
        let bytes = zip.clone();
        let mut i = 0;
        while let Some(p) = bytes[i..].windows(4).position(|w| w == b"bbbb") {
            zip[i + p..i + p + 4].copy_from_slice(b"aaaa");
            i += p + 4;
        }
        let dir = tempfile::tempdir().unwrap();
        let err = extract_zip(&zip, dir.path(), ExtractLimits::default()).unwrap_err();
        assert!(matches!(err, ArtifactError::InvalidZip(_)), "{err}");
    }
}
