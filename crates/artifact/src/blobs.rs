//! The content-addressed code store: `blobs/<sha256>.zip` plus its unpacked `trees/<sha256>/`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::{extract_zip, sha256_hex, ArtifactError, ExtractLimits};

/// A package once stored.
#[derive(Debug, Clone)]
pub struct StoredCode {
    pub sha256_hex: String,
    pub size: u64,
    pub unzipped_size: u64,
    /// The unpacked tree an environment runs from.
    pub tree: PathBuf,
}

/// Where packages live. The embedded implementation is a directory; a cluster one would
/// fetch blobs from a shared store and keep the same tree cache.
pub trait Blobs: Send + Sync + 'static {
    /// Validates, stores and unpacks a zip. Storing the same bytes twice is cheap.
    fn put_zip(&self, zip: &[u8]) -> Result<StoredCode, ArtifactError>;
    /// The unpacked tree of a stored package.
    fn tree(&self, sha256_hex: &str) -> PathBuf;
    /// The zip bytes of a stored package.
    fn read_zip(&self, sha256_hex: &str) -> Result<Vec<u8>, ArtifactError>;
    /// Drops a package nobody references any more.
    fn remove(&self, sha256_hex: &str);
    /// Builds (once) the merged `/opt` of stored layer packages, later layers overwriting
    /// earlier ones, and returns its content key.
    fn merge_layers(&self, layer_shas: &[String]) -> Result<String, ArtifactError>;
    /// Where a merged layer tree lives.
    fn opt_dir(&self, key: &str) -> PathBuf;
    /// Drops a merged layer tree nobody references any more.
    fn remove_opt(&self, key: &str);
}

/// Blobs in a local directory.
#[derive(Debug)]
pub struct FsBlobs {
    root: PathBuf,
    limits: ExtractLimits,
}

impl FsBlobs {
    pub fn open(root: &Path) -> Result<Self, ArtifactError> {
        for sub in ["blobs", "trees", "tmp", "opt"] {
            let p = root.join(sub);
            fs::create_dir_all(&p).map_err(|e| ArtifactError::io(&p, e))?;
        }
        // Half-written uploads from a crash are never referenced: clear them.
        let tmp = root.join("tmp");
        if let Ok(entries) = fs::read_dir(&tmp) {
            for e in entries.flatten() {
                remove_tree(&e.path());
            }
        }
        Ok(FsBlobs {
            root: root.to_path_buf(),
            limits: ExtractLimits::default(),
        })
    }

    fn zip_path(&self, hex: &str) -> PathBuf {
        self.root.join("blobs").join(format!("{hex}.zip"))
    }

    fn scratch(&self) -> PathBuf {
        self.root
            .join("tmp")
            .join(uuid::Uuid::new_v4().simple().to_string())
    }
}

impl Blobs for FsBlobs {
    fn put_zip(&self, zip: &[u8]) -> Result<StoredCode, ArtifactError> {
        let hex = sha256_hex(zip);
        let tree = self.tree(&hex);
        let zip_path = self.zip_path(&hex);
        let unzipped_size = if tree.is_dir() && zip_path.is_file() {
            dir_size(&tree)
        } else {
            let scratch = self.scratch();
            fs::create_dir_all(&scratch).map_err(|e| ArtifactError::io(&scratch, e))?;
            let unpacked = scratch.join("tree");
            fs::create_dir(&unpacked).map_err(|e| ArtifactError::io(&unpacked, e))?;
            let result = extract_zip(zip, &unpacked, self.limits).and_then(|n| {
                let z = scratch.join("code.zip");
                fs::write(&z, zip).map_err(|e| ArtifactError::io(&z, e))?;
                fs::rename(&z, &zip_path).map_err(|e| ArtifactError::io(&zip_path, e))?;
                if !tree.exists() {
                    fs::rename(&unpacked, &tree).map_err(|e| ArtifactError::io(&tree, e))?;
                }
                Ok(n)
            });
            remove_tree(&scratch);
            result?
        };
        Ok(StoredCode {
            sha256_hex: hex,
            size: zip.len() as u64,
            unzipped_size,
            tree,
        })
    }

    fn tree(&self, sha256_hex: &str) -> PathBuf {
        self.root.join("trees").join(sha256_hex)
    }

    fn read_zip(&self, sha256_hex: &str) -> Result<Vec<u8>, ArtifactError> {
        let p = self.zip_path(sha256_hex);
        fs::read(&p).map_err(|e| ArtifactError::io(&p, e))
    }

    fn merge_layers(&self, layer_shas: &[String]) -> Result<String, ArtifactError> {
        let key = sha256_hex(layer_shas.join(",").as_bytes());
        let dest = self.opt_dir(&key);
        if dest.is_dir() {
            return Ok(key);
        }
        let scratch = self.scratch();
        let merged = scratch.join("opt");
        fs::create_dir_all(&merged).map_err(|e| ArtifactError::io(&merged, e))?;
        let result = layer_shas
            .iter()
            .try_for_each(|sha| {
                overlay(&self.tree(sha), &merged).map_err(|e| ArtifactError::io(self.tree(sha), e))
            })
            .and_then(|()| match fs::rename(&merged, &dest) {
                Ok(()) => Ok(()),
                Err(_) if dest.is_dir() => Ok(()), // built concurrently
                Err(e) => Err(ArtifactError::io(&dest, e)),
            });
        remove_tree(&scratch);
        result.map(|()| key)
    }

    fn opt_dir(&self, key: &str) -> PathBuf {
        self.root.join("opt").join(key)
    }

    fn remove_opt(&self, key: &str) {
        let dir = self.opt_dir(key);
        let aside = self.scratch();
        if fs::rename(&dir, &aside).is_ok() {
            remove_tree(&aside);
        }
    }

    fn remove(&self, sha256_hex: &str) {
        let _ = fs::remove_file(self.zip_path(sha256_hex));
        let tree = self.tree(sha256_hex);
        if tree.exists() {
            // Move aside first so a concurrent start never sees a half-deleted tree.
            let aside = self.scratch();
            if fs::rename(&tree, &aside).is_ok() {
                remove_tree(&aside);
            }
        }
    }
}

/// Copies `from` into `to`, hard-linking files (the trees are immutable) and replacing
/// whatever an earlier layer put at the same path.
fn overlay(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let kind = entry.file_type()?;
        let existing = fs::symlink_metadata(&dst).ok();
        if kind.is_dir() {
            if existing.as_ref().is_some_and(|m| !m.is_dir()) {
                fs::remove_file(&dst)?;
            }
            if !dst.exists() {
                fs::create_dir(&dst)?;
            }
            overlay(&src, &dst)?;
            continue;
        }
        match existing {
            Some(m) if m.is_dir() => remove_tree(&dst),
            Some(_) => fs::remove_file(&dst)?,
            None => {}
        }
        if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src)?, &dst)?;
        } else if fs::hard_link(&src, &dst).is_err() {
            fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

/// Removes a tree whose files were made read-only.
fn remove_tree(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if fs::remove_dir_all(path).is_ok() {
        return;
    }
    // Read-only directories block deletion of their entries: open them up and retry.
    fn open_up(p: &Path) {
        if let Ok(meta) = fs::symlink_metadata(p) {
            if meta.is_dir() {
                let _ = fs::set_permissions(p, fs::Permissions::from_mode(0o755));
                if let Ok(rd) = fs::read_dir(p) {
                    for e in rd.flatten() {
                        open_up(&e.path());
                    }
                }
            }
        }
    }
    open_up(path);
    if let Err(e) = fs::remove_dir_all(path) {
        tracing::warn!(path = %path.display(), error = %e, "could not remove code tree");
    }
}

fn dir_size(path: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = fs::read_dir(path) {
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => total += dir_size(&e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map(|m| m.len()).unwrap_or(0),
                _ => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    #[test]
    fn stores_once_and_unpacks() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = FsBlobs::open(dir.path()).unwrap();
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.start_file("app.py", zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(b"print(1)\n").unwrap();
        let zip = w.finish().unwrap().into_inner();
        let a = blobs.put_zip(&zip).unwrap();
        let b = blobs.put_zip(&zip).unwrap();
        assert_eq!(a.sha256_hex, b.sha256_hex);
        assert_eq!(a.unzipped_size, 9);
        assert_eq!(b.unzipped_size, 9);
        assert_eq!(fs::read(a.tree.join("app.py")).unwrap(), b"print(1)\n");
        assert_eq!(blobs.read_zip(&a.sha256_hex).unwrap(), zip);
        // Layers merge in order, later ones winning.
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.start_file("app.py", zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(b"print(2)\n").unwrap();
        w.start_file("python/extra.py", zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(b"x = 1\n").unwrap();
        let second = blobs.put_zip(&w.finish().unwrap().into_inner()).unwrap();
        let key = blobs
            .merge_layers(&[a.sha256_hex.clone(), second.sha256_hex.clone()])
            .unwrap();
        let opt = blobs.opt_dir(&key);
        assert_eq!(fs::read(opt.join("app.py")).unwrap(), b"print(2)\n");
        assert_eq!(fs::read(opt.join("python/extra.py")).unwrap(), b"x = 1\n");
        assert_eq!(
            blobs
                .merge_layers(&[a.sha256_hex.clone(), second.sha256_hex])
                .unwrap(),
            key
        );
        // The merged tree keeps its content when the layer's own package goes.
        blobs.remove(&a.sha256_hex);
        assert!(!a.tree.exists());
        assert!(opt.join("app.py").exists());
        blobs.remove_opt(&key);
        assert!(!opt.exists());
        assert!(blobs.put_zip(b"garbage").is_err());
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }
}
