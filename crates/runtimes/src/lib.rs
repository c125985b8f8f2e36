//! Runtimes: which host program serves a Lambda runtime identifier, and how it is started.
//!
//! `python3.x` and `nodejs*` run Nimbus' own bootstraps (`assets/`, embedded in the binary
//! and written to the runtime directory at start) with the host's interpreters, always by
//! their real path (a version-manager shim costs ~100 ms per start) and always isolated
//! from the host's packages. `provided*` runs the `bootstrap` executable from the code.

mod discover;
mod sdk;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use thiserror::Error;

pub use sdk::{PythonSdk, BOTO3_VERSION};

const PYTHON_BOOTSTRAP: &str = include_str!("../assets/python/bootstrap.py");
const NODE_BOOTSTRAP: &str = include_str!("../assets/node/bootstrap.mjs");

/// The language family of a runtime identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Python { minor: u32 },
    Node { major: u32 },
    Provided,
}

/// Parses a Lambda runtime identifier that Nimbus knows how to serve.
pub fn family(runtime: &str) -> Option<Family> {
    if let Some(minor) = runtime.strip_prefix("python3.") {
        let minor: u32 = minor.parse().ok()?;
        return (8..=15)
            .contains(&minor)
            .then_some(Family::Python { minor });
    }
    if let Some(major) = runtime
        .strip_prefix("nodejs")
        .and_then(|r| r.strip_suffix(".x"))
    {
        let major: u32 = major.parse().ok()?;
        return (16..=26).contains(&major).then_some(Family::Node { major });
    }
    matches!(runtime, "provided" | "provided.al2" | "provided.al2023").then_some(Family::Provided)
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RuntimeError {
    #[error("The runtime parameter of {0} is not supported by Nimbus. Supported runtimes: python3.8-python3.15, nodejs16.x-nodejs26.x, provided, provided.al2, provided.al2023")]
    Unknown(String),
    #[error("The runtime {runtime} cannot be served on this host: {reason}")]
    Unavailable { runtime: String, reason: String },
}

/// How to start one environment's runtime process.
#[derive(Debug, Clone)]
pub struct RuntimeCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// Runtime-specific variables (`PYTHONPATH`, `NODE_PATH`, `AWS_EXECUTION_ENV`, …).
    pub env: Vec<(String, String)>,
}

/// Runtime selection policy.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Explicit `runtime id → interpreter` mappings (`--runtime python3.12=/usr/bin/python3.12`).
    pub overrides: BTreeMap<String, PathBuf>,
    /// Refuse a `python3.x` whose exact interpreter is missing instead of using the nearest.
    pub strict: bool,
}

/// The runtimes this host can serve.
#[derive(Debug)]
pub struct Runtimes {
    dir: PathBuf,
    pythons: BTreeMap<u32, PathBuf>,
    node: Option<PathBuf>,
    options: RuntimeOptions,
    sdk: PythonSdk,
}

impl Runtimes {
    /// Finds interpreters and writes the bootstraps under `dir`.
    pub fn discover(dir: &Path, sdk_dir: &Path, options: RuntimeOptions) -> std::io::Result<Self> {
        write_if_changed(&dir.join("python/bootstrap.py"), PYTHON_BOOTSTRAP)?;
        write_if_changed(&dir.join("node/bootstrap.mjs"), NODE_BOOTSTRAP)?;
        let mut pythons = discover::pythons();
        let mut node = discover::node();
        for (id, path) in &options.overrides {
            match family(id) {
                Some(Family::Python { minor }) => {
                    pythons.insert(minor, path.clone());
                }
                Some(Family::Node { .. }) => node = Some(path.clone()),
                _ => {}
            }
        }
        let sdk = PythonSdk::new(sdk_dir.to_path_buf());
        Ok(Runtimes {
            dir: dir.to_path_buf(),
            pythons,
            node,
            options,
            sdk,
        })
    }

    /// Where the bootstraps are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The managed boto3 shared by Python functions.
    pub fn python_sdk(&self) -> &PythonSdk {
        &self.sdk
    }

    /// Every interpreter found, for the start-up banner.
    pub fn describe(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .pythons
            .iter()
            .map(|(m, p)| format!("python3.{m} → {}", p.display()))
            .collect();
        if let Some(n) = &self.node {
            out.push(format!("nodejs → {}", n.display()));
        }
        out.push("provided.al2023/provided.al2 → bootstrap from the code".into());
        out
    }

    /// Compiles the Python bootstrap's bytecode cache, for every interpreter, as a runtime
    /// that sees the bootstrap at `seen_as` will look for it: sandboxed runtimes see a
    /// read-only runtime directory and cannot write the cache themselves. Blocking.
    pub fn precompile_python_bootstrap(&self, seen_as: &Path) {
        let bootstrap = self.dir.join("python/bootstrap.py");
        for python in self.pythons.values() {
            let status = std::process::Command::new(python)
                .args(["-I", "-S", "-B"])
                .arg(&bootstrap)
                .env_clear()
                .env("_NIMBUS_BOOTSTRAP_SEEN_AS", seen_as)
                .env("_NIMBUS_BOOTSTRAP_PRECOMPILE", "1")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
            if !status.is_ok_and(|s| s.success()) {
                tracing::debug!(python = %python.display(), "could not precompile the bootstrap");
            }
        }
    }

    /// Pythons that can install packages (for the managed SDK).
    pub fn python_candidates(&self) -> Vec<PathBuf> {
        self.pythons.values().rev().cloned().collect()
    }

    fn python_for(&self, runtime: &str, minor: u32) -> Result<&PathBuf, RuntimeError> {
        if let Some(p) = self.pythons.get(&minor) {
            return Ok(p);
        }
        let unavailable = |reason: String| RuntimeError::Unavailable {
            runtime: runtime.into(),
            reason,
        };
        if self.options.strict {
            return Err(unavailable(format!(
                "no python3.{minor} interpreter was found (map one with --runtime {runtime}=/path/to/python3.{minor})"
            )));
        }
        // Nearest available: the newest interpreter not older than asked, else the newest.
        self.pythons
            .range(minor..)
            .next()
            .or_else(|| self.pythons.iter().next_back())
            .map(|(_, p)| p)
            .ok_or_else(|| unavailable("no Python 3 interpreter was found on this host".into()))
    }

    /// Whether `runtime` can be served here (checked at CreateFunction).
    pub fn check(&self, runtime: &str) -> Result<(), RuntimeError> {
        match family(runtime) {
            None => Err(RuntimeError::Unknown(runtime.into())),
            Some(Family::Python { minor }) => self.python_for(runtime, minor).map(|_| ()),
            Some(Family::Node { .. }) => {
                self.node
                    .as_ref()
                    .map(|_| ())
                    .ok_or_else(|| RuntimeError::Unavailable {
                        runtime: runtime.into(),
                        reason: "no node executable was found on this host".into(),
                    })
            }
            Some(Family::Provided) => Ok(()),
        }
    }

    /// The command that starts an environment of `runtime` for code in `code_dir`, with the
    /// function's merged layers (Lambda's `/opt`) in `opt`.
    pub fn command(
        &self,
        runtime: &str,
        code_dir: &Path,
        opt: Option<&Path>,
    ) -> Result<RuntimeCommand, RuntimeError> {
        let exec_env = |env: &mut Vec<(String, String)>| {
            env.push(("AWS_EXECUTION_ENV".into(), format!("AWS_Lambda_{runtime}")))
        };
        match family(runtime) {
            None => Err(RuntimeError::Unknown(runtime.into())),
            Some(Family::Python { minor }) => {
                let python = self.python_for(runtime, minor)?;
                let runtime_dir = self.dir.join("python");
                // Lambda's layout: layers' /opt/python dirs, then the runtime's own packages.
                let mut path = Vec::new();
                if let Some(opt) = opt {
                    path.push(
                        opt.join(format!("python/lib/python3.{minor}/site-packages"))
                            .display()
                            .to_string(),
                    );
                    path.push(opt.join("python").display().to_string());
                }
                if self.sdk.is_ready() {
                    path.push(self.sdk.dir().display().to_string());
                }
                let mut env = vec![
                    ("PYTHONPATH".into(), path.join(":")),
                    (
                        "LAMBDA_RUNTIME_DIR".into(),
                        runtime_dir.display().to_string(),
                    ),
                ];
                exec_env(&mut env);
                Ok(RuntimeCommand {
                    program: python.clone(),
                    args: vec![
                        "-I".into(),
                        "-S".into(),
                        "-B".into(),
                        "-u".into(),
                        runtime_dir.join("bootstrap.py").into(),
                    ],
                    env,
                })
            }
            Some(Family::Node { major }) => {
                let node = self.node.clone().ok_or_else(|| RuntimeError::Unavailable {
                    runtime: runtime.into(),
                    reason: "no node executable was found on this host".into(),
                })?;
                let runtime_dir = self.dir.join("node");
                let mut node_path = Vec::new();
                if let Some(opt) = opt {
                    node_path.push(opt.join(format!("nodejs/node{major}/node_modules")));
                    node_path.push(opt.join("nodejs/node_modules"));
                }
                node_path.push(runtime_dir.join("node_modules"));
                node_path.push(code_dir.to_path_buf());
                let node_path: Vec<String> =
                    node_path.iter().map(|p| p.display().to_string()).collect();
                let mut env = vec![
                    ("NODE_PATH".into(), node_path.join(":")),
                    (
                        "LAMBDA_RUNTIME_DIR".into(),
                        runtime_dir.display().to_string(),
                    ),
                ];
                exec_env(&mut env);
                Ok(RuntimeCommand {
                    program: node,
                    args: vec![runtime_dir.join("bootstrap.mjs").into()],
                    env,
                })
            }
            Some(Family::Provided) => Ok(RuntimeCommand {
                // The code's own bootstrap, else one from a layer.
                program: match opt {
                    Some(opt) if !code_dir.join("bootstrap").exists() => opt.join("bootstrap"),
                    _ => code_dir.join("bootstrap"),
                },
                args: vec![],
                env: vec![(
                    "LAMBDA_RUNTIME_DIR".into(),
                    self.dir.join("provided").display().to_string(),
                )],
            }),
        }
    }
}

fn write_if_changed(path: &Path, content: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(content) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // Write then rename, so a running environment never reads a half-written bootstrap.
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    std::fs::write(&tmp, content)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families() {
        assert_eq!(family("python3.12"), Some(Family::Python { minor: 12 }));
        assert_eq!(family("nodejs20.x"), Some(Family::Node { major: 20 }));
        assert_eq!(family("provided.al2023"), Some(Family::Provided));
        assert_eq!(family("python2.7"), None);
        assert_eq!(family("java21"), None);
        assert_eq!(family("nodejs20"), None);
    }

    #[test]
    fn strict_mode_refuses_missing_pythons() {
        let dir = tempfile::tempdir().unwrap();
        let mut options = RuntimeOptions {
            strict: true,
            ..Default::default()
        };
        options
            .overrides
            .insert("python3.11".into(), "/usr/bin/python3.11".into());
        let r = Runtimes::discover(dir.path(), &dir.path().join("sdk"), options).unwrap();
        assert!(r.check("python3.11").is_ok());
        assert!(matches!(
            r.check("python2.7"),
            Err(RuntimeError::Unknown(_))
        ));
        let cmd = r
            .command("python3.11", Path::new("/code"), Some(Path::new("/layers")))
            .unwrap();
        let pythonpath = &cmd.env.iter().find(|(k, _)| k == "PYTHONPATH").unwrap().1;
        assert!(
            pythonpath.starts_with("/layers/python/lib/python3.11/site-packages:/layers/python")
        );
        assert_eq!(cmd.program, PathBuf::from("/usr/bin/python3.11"));
        assert!(cmd
            .env
            .contains(&("AWS_EXECUTION_ENV".into(), "AWS_Lambda_python3.11".into())));
        let provided = r
            .command("provided.al2023", Path::new("/code"), None)
            .unwrap();
        assert_eq!(provided.program, PathBuf::from("/code/bootstrap"));
        assert!(!provided.env.iter().any(|(k, _)| k == "AWS_EXECUTION_ENV"));
    }
}
