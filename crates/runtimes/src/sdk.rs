//! The managed Python SDK: Lambda's Python runtimes ship boto3, so `import boto3` works
//! without packaging it. Nimbus installs one pinned copy, once per user, in the background.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The pinned SDK version (the boto3 that matches the botocore model Nimbus implements).
pub const BOTO3_VERSION: &str = "1.44.8";

#[derive(Debug, Clone)]
pub struct PythonSdk {
    dir: PathBuf,
    ready: Arc<AtomicBool>,
    installing: Arc<AtomicBool>,
}

impl PythonSdk {
    pub(crate) fn new(cache: PathBuf) -> Self {
        let dir = cache.join(format!("boto3-{BOTO3_VERSION}"));
        let ready = Arc::new(AtomicBool::new(dir.join("boto3/__init__.py").is_file()));
        PythonSdk {
            dir,
            ready,
            installing: Arc::new(AtomicBool::new(false)),
        }
    }

    /// True while [`PythonSdk::install`] runs: a Python environment starting now waits for
    /// it, so a function created right after the server started still finds boto3.
    pub fn is_installing(&self) -> bool {
        self.installing.load(Ordering::Acquire)
    }

    /// The directory on functions' `sys.path`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Installs the SDK with the first interpreter whose pip works, unless it is there
    /// already. Blocking: run it on a background thread.
    pub fn install(&self, pythons: &[PathBuf]) -> Result<(), String> {
        if self.is_ready() {
            return Ok(());
        }
        self.installing.store(true, Ordering::Release);
        let result = self.install_with(pythons);
        self.installing.store(false, Ordering::Release);
        result
    }

    /// Announces an install about to start on another thread (so nothing races past it).
    pub fn mark_installing(&self) {
        if !self.is_ready() {
            self.installing.store(true, Ordering::Release);
        }
    }

    fn install_with(&self, pythons: &[PathBuf]) -> Result<(), String> {
        let parent = self.dir.parent().ok_or("SDK directory has no parent")?;
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        let staging = parent.join(format!(".staging-{}", uuid::Uuid::new_v4().simple()));
        let mut last_error = String::from("no Python interpreter found");
        for python in pythons {
            let status = Command::new(python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-warn-script-location",
                    "--target",
                ])
                .arg(&staging)
                .arg(format!("boto3=={BOTO3_VERSION}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output();
            match status {
                Ok(out) if out.status.success() => {
                    // Several servers may race; the first rename wins, the rest discard.
                    if std::fs::rename(&staging, &self.dir).is_err() {
                        let _ = std::fs::remove_dir_all(&staging);
                    }
                    self.ready.store(
                        self.dir.join("boto3/__init__.py").is_file(),
                        Ordering::Release,
                    );
                    return if self.is_ready() {
                        Ok(())
                    } else {
                        Err("installed SDK is incomplete".into())
                    };
                }
                Ok(out) => {
                    last_error = String::from_utf8_lossy(&out.stderr)
                        .lines()
                        .last()
                        .unwrap_or("pip failed")
                        .to_string();
                }
                Err(e) => last_error = e.to_string(),
            }
            let _ = std::fs::remove_dir_all(&staging);
        }
        Err(last_error)
    }
}
