//! Layers in the catalog: published layer versions, their policies, and attaching them to
//! functions (resolved once, merged into the function's own `/opt` tree).

use std::collections::BTreeMap;
use std::sync::Arc;

use nimbus_model::{limits, AttachedLayer, FunctionRecord, LayerVersionRecord, PolicyStatement};

use super::{new_revision, now, Catalog};
use crate::error::{ApiError, ApiResult};

/// Publishing input, already decoded.
#[derive(Debug)]
pub struct NewLayerVersion {
    pub zip_b64: String,
    pub description: String,
    pub compatible_runtimes: Vec<String>,
    pub compatible_architectures: Vec<String>,
    pub license_info: Option<String>,
}

/// `[a-zA-Z0-9-_]+`, 1–140 characters.
pub fn is_valid_layer_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 140
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `id` has the shape of one of Lambda's runtime identifiers (its enum grows every
/// year, so the shape is checked rather than a frozen list).
fn is_lambda_runtime_id(id: &str) -> bool {
    let tail_ok =
        |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.');
    ["nodejs", "python", "java", "dotnetcore", "dotnet", "ruby"]
        .iter()
        .any(|p| {
            id.strip_prefix(p)
                .is_some_and(|t| t.as_bytes()[0].is_ascii_digit() && tail_ok(t))
        })
        || matches!(
            id,
            "provided" | "provided.al2" | "provided.al2023" | "go1.x" | "nodejs"
        )
}

impl Catalog {
    pub fn layer_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:lambda:{}:{}:layer:{name}",
            self.identity.region, self.identity.account_id
        )
    }

    /// A layer name from a path segment that may also be a layer ARN.
    pub fn layer_name(&self, raw: &str) -> ApiResult<String> {
        let name = match raw.split_once(":layer:") {
            Some((prefix, name)) if prefix.starts_with("arn:") => name,
            _ => raw,
        };
        if is_valid_layer_name(name) {
            Ok(name.to_string())
        } else {
            Err(ApiError::validation(format!(
                "1 validation error detected: Value '{raw}' at 'layerName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{{12}}:layer:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+"
            )))
        }
    }

    /// `(name, version)` of a layer version ARN of this account and region.
    pub fn parse_layer_version_arn(&self, arn: &str) -> Option<(String, u64)> {
        let prefix = self.layer_arn("");
        let rest = arn.strip_prefix(prefix.as_str())?;
        let (name, version) = rest.rsplit_once(':')?;
        let version = version.parse().ok()?;
        is_valid_layer_name(name).then(|| (name.to_string(), version))
    }

    pub fn layer_version(&self, name: &str, version: u64) -> Option<Arc<LayerVersionRecord>> {
        self.layers.get(name).and_then(|l| l.get(&version).cloned())
    }

    pub fn layer_version_or_404(
        &self,
        name: &str,
        version: u64,
    ) -> ApiResult<Arc<LayerVersionRecord>> {
        self.layer_version(name, version).ok_or_else(|| {
            ApiError::not_found(format!(
                "Layer version {}:{version} does not exist.",
                self.layer_arn(name)
            ))
        })
    }

    /// Every live version of a layer, newest first.
    pub fn layer_versions(&self, name: &str) -> Vec<Arc<LayerVersionRecord>> {
        self.layers
            .get(name)
            .map(|l| l.values().rev().cloned().collect())
            .unwrap_or_default()
    }

    /// Names of layers with at least one live version.
    pub fn layer_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .layers
            .iter()
            .filter(|l| !l.value().is_empty())
            .map(|l| l.key().clone())
            .collect();
        names.sort();
        names
    }

    /// PublishLayerVersion.
    pub async fn publish_layer(
        &self,
        name: &str,
        input: NewLayerVersion,
    ) -> ApiResult<Arc<LayerVersionRecord>> {
        if let Some(bad) = input
            .compatible_runtimes
            .iter()
            .find(|r| !is_lambda_runtime_id(r))
        {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '[{bad}]' at 'compatibleRuntimes' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [nodejs*, python3.*, java*, dotnet*, ruby*, provided, provided.al2, provided.al2023, go1.x]]"
            )));
        }
        if input.compatible_runtimes.len() > 15 {
            return Err(ApiError::validation(
                "1 validation error detected: Value at 'compatibleRuntimes' failed to satisfy constraint: Member must have length less than or equal to 15",
            ));
        }
        if input.compatible_architectures.len() > 2
            || input
                .compatible_architectures
                .iter()
                .any(|a| !matches!(a.as_str(), "x86_64" | "arm64"))
        {
            return Err(ApiError::validation(
                "1 validation error detected: Value at 'compatibleArchitectures' failed to satisfy constraint: Member must have length less than or equal to 2, Member must satisfy enum value set: [x86_64, arm64]",
            ));
        }
        if input
            .license_info
            .as_ref()
            .is_some_and(|l| l.chars().count() > 512)
        {
            return Err(ApiError::validation(
                "1 validation error detected: Value at 'licenseInfo' failed to satisfy constraint: Member must have length less than or equal to 512",
            ));
        }
        let code = self.store_zip(&input.zip_b64).await?;
        let _w = self.write.lock().await;
        let version = self.layer_last.get(name).map_or(0, |v| *v) + 1;
        let layer = LayerVersionRecord {
            name: name.to_string(),
            version,
            description: input.description,
            created_date: now(),
            compatible_runtimes: input.compatible_runtimes,
            compatible_architectures: input.compatible_architectures,
            license_info: input.license_info,
            code,
            policy: vec![],
            policy_revision: new_revision(),
        };
        self.layer_store.put_layer_version(&layer)?;
        self.layer_last.insert(name.to_string(), version);
        let layer = Arc::new(layer);
        self.layers
            .entry(name.to_string())
            .or_default()
            .insert(version, layer.clone());
        Ok(layer)
    }

    /// DeleteLayerVersion (idempotent, as on AWS). Functions keep running on their merged
    /// copy of the content.
    pub async fn delete_layer_version(&self, name: &str, version: u64) -> ApiResult<()> {
        let _w = self.write.lock().await;
        let Some(layer) = self.layer_version(name, version) else {
            return Ok(());
        };
        self.layer_store.delete_layer_version(name, version)?;
        if let Some(mut l) = self.layers.get_mut(name) {
            l.remove(&version);
        }
        self.collect_garbage(&layer.code.sha256_hex);
        Ok(())
    }

    fn put_layer(&self, layer: LayerVersionRecord) -> ApiResult<Arc<LayerVersionRecord>> {
        self.layer_store.put_layer_version(&layer)?;
        let layer = Arc::new(layer);
        self.layers
            .entry(layer.name.clone())
            .or_default()
            .insert(layer.version, layer.clone());
        Ok(layer)
    }

    fn check_policy_revision(layer: &LayerVersionRecord, revision: Option<&str>) -> ApiResult<()> {
        match revision {
            Some(r) if !r.is_empty() && r != layer.policy_revision => Err(ApiError::precondition(
                "The Revision Id provided does not match the latest Revision Id. Call the GetLayerVersionPolicy API to retrieve the latest Revision Id",
            )),
            _ => Ok(()),
        }
    }

    /// AddLayerVersionPermission.
    pub async fn add_layer_permission(
        &self,
        name: &str,
        version: u64,
        statement: PolicyStatement,
        revision: Option<&str>,
    ) -> ApiResult<Arc<LayerVersionRecord>> {
        let _w = self.write.lock().await;
        let mut layer = (*self.layer_version_or_404(name, version)?).clone();
        Self::check_policy_revision(&layer, revision)?;
        if layer.policy.iter().any(|s| s.sid == statement.sid) {
            return Err(ApiError::conflict(format!(
                "The statement id ({}) provided already exists. Please provide a new statement id, or remove the existing statement.",
                statement.sid
            )));
        }
        layer.policy.push(statement);
        layer.policy_revision = new_revision();
        self.put_layer(layer)
    }

    /// RemoveLayerVersionPermission.
    pub async fn remove_layer_permission(
        &self,
        name: &str,
        version: u64,
        sid: &str,
        revision: Option<&str>,
    ) -> ApiResult<()> {
        let _w = self.write.lock().await;
        let mut layer = (*self.layer_version_or_404(name, version)?).clone();
        Self::check_policy_revision(&layer, revision)?;
        let before = layer.policy.len();
        layer.policy.retain(|s| s.sid != sid);
        if layer.policy.len() == before {
            return Err(ApiError::not_found(format!(
                "Statement {sid} is not found in resource policy."
            )));
        }
        layer.policy_revision = new_revision();
        self.put_layer(layer).map(|_| ())
    }

    /// Resolves `config.layers` and builds the merged `/opt` of a function version about to
    /// be stored; also enforces the 250 MB unzipped limit over code plus layers.
    pub(super) async fn attach_layers(&self, mut rec: FunctionRecord) -> ApiResult<FunctionRecord> {
        let arns = rec.config.layers.clone();
        if arns.len() > 5 {
            return Err(ApiError::invalid("Cannot reference more than 5 layers."));
        }
        let mut attached = Vec::with_capacity(arns.len());
        let mut seen = BTreeMap::new();
        for arn in &arns {
            let (name, version) = self
                .parse_layer_version_arn(arn)
                .ok_or_else(|| ApiError::invalid(format!("Layer version {arn} does not exist.")))?;
            // A layer deleted since it was attached keeps working for this function.
            let code = match self.layer_version(&name, version) {
                Some(l) => l.code.clone(),
                None => rec
                    .attached_layers
                    .iter()
                    .find(|a| &a.arn == arn)
                    .map(|a| a.code.clone())
                    .ok_or_else(|| {
                        ApiError::invalid(format!("Layer version {arn} does not exist."))
                    })?,
            };
            if seen.insert(name.clone(), version).is_some() {
                return Err(ApiError::invalid(format!(
                    "Two different versions of the same layer are not allowed: {name}"
                )));
            }
            attached.push(AttachedLayer {
                arn: arn.clone(),
                code,
            });
        }
        let total: u64 =
            rec.code.unzipped_size + attached.iter().map(|a| a.code.unzipped_size).sum::<u64>();
        if total > limits::UNZIPPED_MAX_BYTES {
            return Err(ApiError::invalid(format!(
                "Function code combined with layers exceeds the maximum allowed size of {} bytes. The actual size is {total} bytes.",
                limits::UNZIPPED_MAX_BYTES
            )));
        }
        rec.opt_key = if attached.is_empty() {
            None
        } else {
            let shas: Vec<String> = attached.iter().map(|a| a.code.sha256_hex.clone()).collect();
            let blobs = self.blobs.clone();
            Some(
                tokio::task::spawn_blocking(move || blobs.merge_layers(&shas))
                    .await
                    .map_err(|e| ApiError::service(format!("layer merge task failed: {e}")))??,
            )
        };
        rec.attached_layers = attached;
        Ok(rec)
    }

    /// Drops a merged layer tree no function version uses any more.
    pub(super) fn collect_opt(&self, key: &str) {
        let used = self
            .latest
            .iter()
            .any(|r| r.opt_key.as_deref() == Some(key))
            || self
                .versions
                .iter()
                .any(|v| v.values().any(|r| r.opt_key.as_deref() == Some(key)));
        if !used {
            self.blobs.remove_opt(key);
        }
    }
}
