//! The function catalog: every function version in memory (so the invoke path never reads
//! the database), written through to the [`Store`] and the code [`Blobs`]. Control-plane
//! writes are serialised by one async mutex; reads are lock-free.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use dashmap::DashMap;
use nimbus_artifact::Blobs;
use nimbus_invoker::CodePaths;
use nimbus_model::time_fmt::lambda_timestamp;
use nimbus_model::{
    limits, AliasRecord, CodeInfo, FunctionConfig, FunctionRecord, Identity, LayerVersionRecord,
};
use nimbus_runtimes::Runtimes;
use nimbus_store::{LayerStore, Store};

use crate::error::{ApiError, ApiResult};
use crate::wire::{CodeInput, ConfigInput, CreateFunctionInput, PASSTHROUGH_MEMBERS};

pub struct Catalog {
    identity: Identity,
    store: Arc<dyn Store>,
    blobs: Arc<dyn Blobs>,
    runtimes: Arc<Runtimes>,
    latest: DashMap<String, Arc<FunctionRecord>>,
    /// Published versions per function, by number.
    versions: DashMap<String, BTreeMap<u64, Arc<FunctionRecord>>>,
    /// Aliases per function, by name.
    aliases: DashMap<String, BTreeMap<String, Arc<AliasRecord>>>,
    layer_store: Arc<dyn LayerStore>,
    /// Live layer versions per layer, by number.
    layers: DashMap<String, BTreeMap<u64, Arc<LayerVersionRecord>>>,
    /// The highest version ever published per layer (numbers are never reused).
    layer_last: DashMap<String, u64>,
    /// Function URL id → (function, qualifier).
    url_index: DashMap<String, (String, String)>,
    write: tokio::sync::Mutex<()>,
}

mod layers;
pub use layers::NewLayerVersion;

/// Routing input for CreateAlias/UpdateAlias: `None` leaves it, `Some(None)` clears it.
pub type Routing = Option<Option<(String, f64)>>;

fn new_revision() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn now() -> String {
    lambda_timestamp(time::OffsetDateTime::now_utc())
}

fn int_in(v: i64) -> u32 {
    u32::try_from(v.clamp(0, i64::from(u32::MAX))).unwrap_or(u32::MAX)
}

impl Catalog {
    /// Loads every stored function.
    pub fn load(
        identity: Identity,
        store: Arc<dyn Store>,
        blobs: Arc<dyn Blobs>,
        runtimes: Arc<Runtimes>,
        layer_store: Arc<dyn LayerStore>,
    ) -> ApiResult<Self> {
        let stored = layer_store.load_layers()?;
        let layer_last: DashMap<String, u64> = stored.last_versions.into_iter().collect();
        let live = stored.versions;
        let layers: DashMap<String, BTreeMap<u64, Arc<LayerVersionRecord>>> = DashMap::new();
        for l in live {
            layers
                .entry(l.name.clone())
                .or_default()
                .insert(l.version, Arc::new(l));
        }
        let latest = DashMap::new();
        let versions: DashMap<String, BTreeMap<u64, Arc<FunctionRecord>>> = DashMap::new();
        for rec in store.load_functions()? {
            if rec.version == "$LATEST" {
                latest.insert(rec.name.clone(), Arc::new(rec));
            } else if let Ok(n) = rec.version.parse::<u64>() {
                versions
                    .entry(rec.name.clone())
                    .or_default()
                    .insert(n, Arc::new(rec));
            }
        }
        let aliases: DashMap<String, BTreeMap<String, Arc<AliasRecord>>> = DashMap::new();
        for a in store.load_aliases()? {
            aliases
                .entry(a.function.clone())
                .or_default()
                .insert(a.name.clone(), Arc::new(a));
        }
        let url_index = DashMap::new();
        for r in latest.iter() {
            for (qualifier, u) in &r.urls {
                url_index.insert(u.url_id.clone(), (r.name.clone(), qualifier.clone()));
            }
        }
        Ok(Catalog {
            url_index,
            identity,
            store,
            blobs,
            runtimes,
            latest,
            versions,
            aliases,
            layer_store,
            layers,
            layer_last,
            write: tokio::sync::Mutex::new(()),
        })
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn get(&self, name: &str) -> Option<Arc<FunctionRecord>> {
        self.latest.get(name).map(|r| r.clone())
    }

    /// The function version a qualifier names (`$LATEST`, a number, or an alias' primary
    /// version), or Lambda's not-found error for the ARN asked for.
    pub fn resolve(&self, name: &str, qualifier: Option<&str>) -> ApiResult<Arc<FunctionRecord>> {
        self.resolve_with(name, qualifier, false)
    }

    /// Like [`Catalog::resolve`], but an alias with a weighted second version picks one by
    /// weight, as each invocation does.
    pub fn resolve_for_invoke(
        &self,
        name: &str,
        qualifier: Option<&str>,
    ) -> ApiResult<Arc<FunctionRecord>> {
        self.resolve_with(name, qualifier, true)
    }

    fn resolve_with(
        &self,
        name: &str,
        qualifier: Option<&str>,
        route: bool,
    ) -> ApiResult<Arc<FunctionRecord>> {
        let not_found = || {
            ApiError::function_not_found(&match qualifier {
                Some(q) => self.identity.qualified_arn(name, q),
                None => self.identity.function_arn(name),
            })
        };
        let latest = self
            .get(name)
            .ok_or_else(|| ApiError::function_not_found(&self.identity.function_arn(name)))?;
        let version = match qualifier {
            None | Some("$LATEST") => return Ok(latest),
            Some(q) if q.bytes().all(|b| b.is_ascii_digit()) => q.to_string(),
            Some(alias) => {
                let a = self.alias(name, alias).ok_or_else(not_found)?;
                match &a.additional_version {
                    Some((v, weight)) if route && random_unit() < *weight => v.clone(),
                    _ => a.function_version.clone(),
                }
            }
        };
        if version == "$LATEST" {
            return Ok(latest);
        }
        let n: u64 = version.parse().map_err(|_| not_found())?;
        self.versions
            .get(name)
            .and_then(|v| v.get(&n).cloned())
            .ok_or_else(not_found)
    }

    pub fn alias(&self, function: &str, alias: &str) -> Option<Arc<AliasRecord>> {
        self.aliases
            .get(function)
            .and_then(|a| a.get(alias).cloned())
    }

    /// Published versions of a function, in order.
    pub fn versions(&self, name: &str) -> Vec<Arc<FunctionRecord>> {
        self.versions
            .get(name)
            .map(|v| v.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Aliases of a function, by name.
    pub fn aliases(&self, name: &str) -> Vec<Arc<AliasRecord>> {
        self.aliases
            .get(name)
            .map(|a| a.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn list(&self) -> Vec<Arc<FunctionRecord>> {
        let mut all: Vec<_> = self.latest.iter().map(|r| r.value().clone()).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    pub fn total_code_size(&self) -> u64 {
        self.latest.iter().map(|r| r.code.size).sum()
    }

    /// Where a function's code is unpacked.
    /// Where a function version's code and merged layers are.
    pub fn code_paths(&self, f: &FunctionRecord) -> CodePaths {
        CodePaths {
            task: self.blobs.tree(&f.code.sha256_hex),
            opt: f.opt_key.as_deref().map(|k| self.blobs.opt_dir(k)),
        }
    }

    pub fn read_zip(&self, sha256_hex: &str) -> ApiResult<Vec<u8>> {
        Ok(self.blobs.read_zip(sha256_hex)?)
    }

    async fn store_zip(&self, zip_b64: &str) -> ApiResult<CodeInfo> {
        // Base64 of a 50 MB zip; checked before decoding so a huge body costs nothing.
        let max_b64 = limits::ZIP_MAX_BYTES.div_ceil(3) * 4;
        if zip_b64.len() as u64 > max_b64 + 4 {
            return Err(ApiError::too_large(format!(
                "Zipped size must be smaller than {} bytes",
                limits::ZIP_MAX_BYTES
            )));
        }
        let zip = base64::engine::general_purpose::STANDARD
            .decode(zip_b64.trim())
            .map_err(|e| {
                ApiError::invalid(format!("Could not decode ZipFile: invalid base64 ({e})"))
            })?;
        if zip.len() as u64 > limits::ZIP_MAX_BYTES {
            return Err(ApiError::too_large(format!(
                "Zipped size must be smaller than {} bytes",
                limits::ZIP_MAX_BYTES
            )));
        }
        let blobs = self.blobs.clone();
        let stored = tokio::task::spawn_blocking(move || blobs.put_zip(&zip))
            .await
            .map_err(|e| ApiError::service(format!("code store task failed: {e}")))??;
        Ok(CodeInfo {
            sha256_hex: stored.sha256_hex,
            size: stored.size,
            unzipped_size: stored.unzipped_size,
        })
    }

    fn zip_of(code: &CodeInput) -> ApiResult<&str> {
        if code.s3_bucket.is_some() || code.s3_key.is_some() || code.s3_object_version.is_some() {
            return Err(ApiError::invalid(
                "Nimbus does not read code from Amazon S3: upload the package inline as Code.ZipFile (aws lambda create-function --zip-file fileb://function.zip)",
            ));
        }
        if code.image_uri.is_some() {
            return Err(ApiError::invalid(
                "PackageType Image is not supported yet: upload a .zip package as Code.ZipFile",
            ));
        }
        code.zip_file.as_deref().ok_or_else(|| {
            ApiError::invalid("Please provide a source for function code (Code.ZipFile).")
        })
    }

    fn check_runtime(&self, runtime: &str) -> ApiResult<()> {
        self.runtimes
            .check(runtime)
            .map_err(|e| ApiError::invalid(e.to_string()))
    }

    fn persist(&self, rec: FunctionRecord) -> ApiResult<Arc<FunctionRecord>> {
        self.store.put_function(&rec)?;
        let rec = Arc::new(rec);
        let old = self.latest.insert(rec.name.clone(), rec.clone());
        self.index_urls(old.as_deref(), Some(&rec));
        Ok(rec)
    }

    /// Keeps the Function URL index (url-id → function and qualifier) in step with `$LATEST`.
    fn index_urls(&self, old: Option<&FunctionRecord>, new: Option<&FunctionRecord>) {
        for u in old.iter().flat_map(|r| r.urls.values()) {
            self.url_index.remove(&u.url_id);
        }
        if let Some(r) = new {
            for (qualifier, u) in &r.urls {
                self.url_index
                    .insert(u.url_id.clone(), (r.name.clone(), qualifier.clone()));
            }
        }
    }

    /// The function and qualifier a Function URL id names.
    pub fn url_target(&self, url_id: &str) -> Option<(String, String)> {
        self.url_index.get(url_id).map(|e| e.value().clone())
    }

    /// Create/Update/DeleteFunctionUrlConfig: stores (or with `None` removes) the URL of one
    /// qualifier.
    pub async fn set_function_url(
        &self,
        name: &str,
        qualifier: &str,
        config: Option<nimbus_model::FunctionUrlConfig>,
    ) -> ApiResult<()> {
        let _w = self.write.lock().await;
        let mut rec = (*self.resolve(name, None)?).clone();
        match config {
            Some(c) => rec.urls.insert(qualifier.to_string(), c),
            None => rec.urls.remove(qualifier),
        };
        self.persist(rec).map(|_| ())
    }

    /// CreateFunction.
    pub async fn create(
        &self,
        input: CreateFunctionInput,
        name: String,
    ) -> ApiResult<Arc<FunctionRecord>> {
        if input.package_type.as_deref().is_some_and(|p| p != "Zip") {
            return Err(ApiError::invalid(
                "PackageType Image is not supported yet: upload a .zip package as Code.ZipFile",
            ));
        }
        let runtime = input.config.runtime.clone().ok_or_else(|| {
            ApiError::invalid("Runtime and Handler are mandatory parameters for functions created with deployment packages.")
        })?;
        if input.config.handler.is_none() {
            return Err(ApiError::invalid(
                "Runtime and Handler are mandatory parameters for functions created with deployment packages.",
            ));
        }
        let role = input.config.role.clone().ok_or_else(|| ApiError::validation("1 validation error detected: Value null at 'role' failed to satisfy constraint: Member must not be null"))?;
        let mut config = FunctionConfig::new(&name, &runtime, "", &role);
        if let Some(a) = &input.architectures {
            config.architectures = a.clone();
        }
        apply_config(&mut config, &input.config)?;
        config.validate()?;
        self.check_runtime(&config.runtime)?;
        let tags = input.tags.clone().unwrap_or_default();
        validate_tags(&tags)?;
        let zip = Self::zip_of(&input.code)?;

        let _w = self.write.lock().await;
        if self.latest.contains_key(&name) {
            return Err(ApiError::conflict(format!(
                "Function already exist: {name}"
            )));
        }
        let code = self.store_zip(zip).await?;
        let mut rec = FunctionRecord::new_latest(&name, config, code, new_revision(), now());
        rec.tags = tags;
        let rec = self.attach_layers(rec).await?;
        let rec = self.persist(rec)?;
        if input.publish.unwrap_or(false) {
            return self.publish_locked(&rec, None, None, None);
        }
        Ok(rec)
    }

    fn check_revision(current: &FunctionRecord, wanted: Option<&str>) -> ApiResult<()> {
        match wanted {
            Some(r) if r != current.revision_id => Err(revision_mismatch()),
            _ => Ok(()),
        }
    }

    /// UpdateFunctionCode.
    pub async fn update_code(
        &self,
        name: &str,
        zip_b64: Option<&str>,
        code: &CodeInput,
        revision: Option<&str>,
        dry_run: bool,
        publish: bool,
    ) -> ApiResult<Arc<FunctionRecord>> {
        let zip = match zip_b64 {
            Some(z) => z,
            None => Self::zip_of(code)?,
        };
        let _w = self.write.lock().await;
        let current = self.resolve(name, None)?;
        Self::check_revision(&current, revision)?;
        let code = self.store_zip(zip).await?;
        if dry_run {
            let mut rec = (*current).clone();
            rec.code = code;
            return Ok(Arc::new(rec));
        }
        let old_sha = current.code.sha256_hex.clone();
        let mut rec = (*current).clone();
        rec.code = code;
        rec.revision_id = new_revision();
        rec.last_modified = now();
        rec.generation += 1;
        let rec = self.attach_layers(rec).await?;
        let rec = self.persist(rec)?;
        self.collect_garbage(&old_sha);
        if publish {
            return self.publish_locked(&rec, None, None, None);
        }
        Ok(rec)
    }

    /// UpdateFunctionConfiguration.
    pub async fn update_config(
        &self,
        name: &str,
        input: &ConfigInput,
    ) -> ApiResult<Arc<FunctionRecord>> {
        let _w = self.write.lock().await;
        let current = self.resolve(name, None)?;
        Self::check_revision(&current, input.revision_id.as_deref())?;
        let mut rec = (*current).clone();
        apply_config(&mut rec.config, input)?;
        rec.config.validate()?;
        if input.runtime.is_some() {
            self.check_runtime(&rec.config.runtime)?;
        }
        rec.revision_id = new_revision();
        rec.last_modified = now();
        rec.generation += 1;
        let old_opt = current.opt_key.clone();
        if input.layers.is_some() {
            rec = self.attach_layers(rec).await?;
        }
        let rec = self.persist(rec)?;
        if let Some(key) = old_opt.filter(|k| rec.opt_key.as_ref() != Some(k)) {
            self.collect_opt(&key);
        }
        Ok(rec)
    }

    /// Put/DeleteFunctionConcurrency: stores the function's reservation.
    pub async fn set_reserved_concurrency(
        &self,
        name: &str,
        reserved: Option<u32>,
    ) -> ApiResult<()> {
        let _w = self.write.lock().await;
        let mut rec = (*self.resolve(name, None)?).clone();
        rec.reserved_concurrency = reserved;
        self.persist(rec).map(|_| ())
    }

    /// Put/DeleteProvisionedConcurrencyConfig: stores (or with `None` removes) the setting.
    pub async fn set_provisioned(
        &self,
        name: &str,
        qualifier: &str,
        requested: Option<u32>,
    ) -> ApiResult<()> {
        let _w = self.write.lock().await;
        let mut rec = (*self.resolve(name, None)?).clone();
        match requested {
            Some(n) => {
                rec.provisioned.insert(
                    qualifier.to_string(),
                    nimbus_model::ProvisionedConfig {
                        requested: n,
                        last_modified: now(),
                    },
                );
            }
            None => {
                rec.provisioned.remove(qualifier);
            }
        }
        self.persist(rec).map(|_| ())
    }

    /// Put/Update/DeleteFunctionEventInvokeConfig: stores (or with `None` removes) the
    /// asynchronous-invocation settings of one qualifier.
    pub async fn set_event_invoke(
        &self,
        name: &str,
        qualifier: &str,
        config: Option<nimbus_model::EventInvokeConfig>,
    ) -> ApiResult<()> {
        let _w = self.write.lock().await;
        let mut rec = (*self.resolve(name, None)?).clone();
        match config {
            Some(c) => rec.event_invoke.insert(qualifier.to_string(), c),
            None => rec.event_invoke.remove(qualifier),
        };
        self.persist(rec).map(|_| ())
    }

    /// Asynchronous-invocation settings and Function URLs go with the version or alias they
    /// were set on.
    fn forget_qualifier(&self, name: &str, qualifier: &str) -> ApiResult<()> {
        match self.resolve(name, None) {
            Ok(latest)
                if latest.event_invoke.contains_key(qualifier)
                    || latest.urls.contains_key(qualifier) =>
            {
                let mut rec = (*latest).clone();
                rec.event_invoke.remove(qualifier);
                rec.urls.remove(qualifier);
                self.persist(rec).map(|_| ())
            }
            _ => Ok(()),
        }
    }

    /// DeleteFunction: the whole function, or one published version.
    pub async fn delete(&self, name: &str, qualifier: Option<&str>) -> ApiResult<()> {
        let _w = self.write.lock().await;
        match qualifier {
            None => {
                let current = self.resolve(name, None)?;
                let shas: Vec<String> = std::iter::once(current.code.sha256_hex.clone())
                    .chain(
                        self.versions(name)
                            .iter()
                            .map(|v| v.code.sha256_hex.clone()),
                    )
                    .collect();
                let opts: Vec<String> = std::iter::once(current.opt_key.clone())
                    .chain(self.versions(name).iter().map(|v| v.opt_key.clone()))
                    .flatten()
                    .collect();
                self.store.delete_function(name)?;
                if let Some((_, old)) = self.latest.remove(name) {
                    self.index_urls(Some(&old), None);
                }
                self.versions.remove(name);
                self.aliases.remove(name);
                for sha in shas {
                    self.collect_garbage(&sha);
                }
                for key in opts {
                    self.collect_opt(&key);
                }
                Ok(())
            }
            Some("$LATEST") => Err(ApiError::invalid(
                "$LATEST version cannot be deleted without deleting the function.",
            )),
            Some(q) if q.bytes().all(|b| b.is_ascii_digit()) => {
                let version = self.resolve(name, Some(q))?;
                let users: Vec<String> = self
                    .aliases(name)
                    .iter()
                    .filter(|a| {
                        a.function_version == q
                            || a.additional_version.as_ref().is_some_and(|(v, _)| v == q)
                    })
                    .map(|a| a.name.clone())
                    .collect();
                if !users.is_empty() {
                    return Err(ApiError::conflict(format!(
                        "Unable to delete version because the following aliases reference it: [{}]",
                        users.join(", ")
                    )));
                }
                self.store.delete_version(name, q)?;
                if let (Some(mut v), Ok(n)) = (self.versions.get_mut(name), q.parse::<u64>()) {
                    v.remove(&n);
                }
                self.forget_qualifier(name, q)?;
                self.collect_garbage(&version.code.sha256_hex);
                if let Some(key) = &version.opt_key {
                    self.collect_opt(key);
                }
                Ok(())
            }
            Some(alias) => {
                self.resolve(name, Some(alias))?;
                Err(ApiError::invalid(format!(
                    "Deletion of aliases is not supported through DeleteFunction: use DeleteAlias for {}",
                    self.identity.qualified_arn(name, alias)
                )))
            }
        }
    }

    /// PublishVersion.
    pub async fn publish(
        &self,
        name: &str,
        code_sha256: Option<&str>,
        description: Option<String>,
        revision: Option<&str>,
    ) -> ApiResult<Arc<FunctionRecord>> {
        let _w = self.write.lock().await;
        let latest = self.resolve(name, None)?;
        self.publish_locked(&latest, code_sha256, description, revision)
    }

    fn publish_locked(
        &self,
        latest: &FunctionRecord,
        code_sha256: Option<&str>,
        description: Option<String>,
        revision: Option<&str>,
    ) -> ApiResult<Arc<FunctionRecord>> {
        Self::check_revision(latest, revision)?;
        let current_sha = nimbus_artifact::code_sha256_b64(&latest.code.sha256_hex);
        if let Some(want) = code_sha256.filter(|s| !s.is_empty()) {
            if want != current_sha {
                return Err(ApiError::precondition(format!(
                    "CodeSHA256 ({want}) is different from current CodeSHA256 in $LATEST ({current_sha}). Please try again with the current CodeSHA256."
                )));
            }
        }
        // Nothing changed since the newest version was published from $LATEST (every code
        // or configuration change renews $LATEST's RevisionId): Lambda returns that version.
        if let Some(last) = self.versions(&latest.name).last() {
            if last.published_from.as_deref() == Some(latest.revision_id.as_str()) {
                return Ok(last.clone());
            }
        }
        let n = latest.last_published + 1;
        let mut version = latest.clone();
        version.published_from = Some(latest.revision_id.clone());
        version.version = n.to_string();
        version.revision_id = new_revision();
        version.last_modified = now();
        if let Some(d) = description {
            version.config.description = d;
        }
        self.store.put_function(&version)?;
        let mut head = latest.clone();
        head.last_published = n;
        self.store.put_function(&head)?;
        self.latest.insert(head.name.clone(), Arc::new(head));
        let version = Arc::new(version);
        self.versions
            .entry(version.name.clone())
            .or_default()
            .insert(n, version.clone());
        Ok(version)
    }

    /// `$LATEST` or an existing published version, else Lambda's not-found error.
    fn check_version_exists(&self, name: &str, version: &str) -> ApiResult<()> {
        let published = version.bytes().all(|b| b.is_ascii_digit()) && !version.is_empty();
        if version == "$LATEST" || (published && self.resolve(name, Some(version)).is_ok()) {
            Ok(())
        } else {
            Err(ApiError::function_not_found(
                &self.identity.qualified_arn(name, version),
            ))
        }
    }

    fn check_routing(
        &self,
        name: &str,
        primary: &str,
        routing: &Option<(String, f64)>,
    ) -> ApiResult<()> {
        let Some((extra, weight)) = routing else {
            return Ok(());
        };
        if !(0.0..=1.0).contains(weight) {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{{{extra}={weight}}}' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0]"
            )));
        }
        if primary == "$LATEST" {
            return Err(ApiError::invalid(
                "$LATEST is not supported for an alias pointing to more than 1 version",
            ));
        }
        if extra == primary {
            return Err(ApiError::invalid(format!(
                "Invalid function version {extra}. Function version {extra} is already included in routing configuration."
            )));
        }
        if extra.is_empty() || !extra.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::invalid(format!(
                "Invalid function version {extra}: only published versions can take part in weighted routing"
            )));
        }
        self.check_version_exists(name, extra)
    }

    /// CreateAlias.
    pub async fn create_alias(
        &self,
        function: &str,
        name: &str,
        function_version: &str,
        description: Option<String>,
        routing: Option<(String, f64)>,
    ) -> ApiResult<Arc<AliasRecord>> {
        if !nimbus_model::function::is_valid_alias_name(name) {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)"
            )));
        }
        let _w = self.write.lock().await;
        self.resolve(function, None)?;
        self.check_version_exists(function, function_version)?;
        self.check_routing(function, function_version, &routing)?;
        if self.alias(function, name).is_some() {
            return Err(ApiError::conflict(format!(
                "Alias already exists: {}",
                self.identity.qualified_arn(function, name)
            )));
        }
        let alias = AliasRecord {
            function: function.to_string(),
            name: name.to_string(),
            function_version: function_version.to_string(),
            description: description.unwrap_or_default(),
            additional_version: routing,
            revision_id: new_revision(),
        };
        self.persist_alias(alias)
    }

    fn persist_alias(&self, alias: AliasRecord) -> ApiResult<Arc<AliasRecord>> {
        self.store.put_alias(&alias)?;
        let alias = Arc::new(alias);
        self.aliases
            .entry(alias.function.clone())
            .or_default()
            .insert(alias.name.clone(), alias.clone());
        Ok(alias)
    }

    pub(crate) fn alias_not_found(&self, function: &str, name: &str) -> ApiError {
        ApiError::not_found(format!(
            "Alias not found: {}",
            self.identity.qualified_arn(function, name)
        ))
    }

    /// UpdateAlias.
    pub async fn update_alias(
        &self,
        function: &str,
        name: &str,
        function_version: Option<&str>,
        description: Option<String>,
        routing: Routing,
        revision: Option<&str>,
    ) -> ApiResult<Arc<AliasRecord>> {
        let _w = self.write.lock().await;
        self.resolve(function, None)?;
        let current = self
            .alias(function, name)
            .ok_or_else(|| self.alias_not_found(function, name))?;
        if revision.is_some_and(|r| r != current.revision_id) {
            return Err(revision_mismatch());
        }
        let mut alias = (*current).clone();
        if let Some(v) = function_version {
            self.check_version_exists(function, v)?;
            alias.function_version = v.to_string();
        }
        if let Some(d) = description {
            alias.description = d;
        }
        if let Some(r) = routing {
            alias.additional_version = r;
        }
        self.check_routing(function, &alias.function_version, &alias.additional_version)?;
        alias.revision_id = new_revision();
        self.persist_alias(alias)
    }

    /// DeleteAlias.
    pub async fn delete_alias(&self, function: &str, name: &str) -> ApiResult<()> {
        let _w = self.write.lock().await;
        self.resolve(function, None)?;
        if self.alias(function, name).is_none() {
            return Err(self.alias_not_found(function, name));
        }
        self.store.delete_alias(function, name)?;
        if let Some(mut a) = self.aliases.get_mut(function) {
            a.remove(name);
        }
        self.forget_qualifier(function, name)?;
        Ok(())
    }

    /// TagResource / UntagResource.
    pub async fn retag(
        &self,
        name: &str,
        add: BTreeMap<String, String>,
        remove: &[String],
    ) -> ApiResult<Arc<FunctionRecord>> {
        validate_tags(&add)?;
        let _w = self.write.lock().await;
        let current = self.resolve(name, None)?;
        let mut rec = (*current).clone();
        rec.tags.extend(add);
        for k in remove {
            rec.tags.remove(k);
        }
        if rec.tags.len() > limits::TAGS_MAX {
            return Err(ApiError::invalid(format!(
                "Too many tags: a function can have at most {}",
                limits::TAGS_MAX
            )));
        }
        self.persist(rec)
    }

    /// Drops a package no function references any more.
    fn collect_garbage(&self, sha: &str) {
        let used = self.latest.iter().any(|r| r.code.sha256_hex == sha)
            || self
                .versions
                .iter()
                .any(|v| v.values().any(|r| r.code.sha256_hex == sha))
            || self
                .layers
                .iter()
                .any(|l| l.values().any(|r| r.code.sha256_hex == sha));
        if !used {
            self.blobs.remove(sha);
        }
    }
}

/// 412 for a stale `RevisionId` (optimistic locking of functions and aliases).
fn revision_mismatch() -> ApiError {
    ApiError::precondition(
        "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
    )
}

/// A uniformly distributed number in [0, 1) for weighted alias routing.
fn random_unit() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() >> 75; // 53 random bits
    bits as f64 / (1u64 << 53) as f64
}

fn apply_config(c: &mut FunctionConfig, input: &ConfigInput) -> ApiResult<()> {
    if let Some(v) = &input.runtime {
        c.runtime = v.clone();
    }
    if let Some(v) = &input.handler {
        c.handler = v.clone();
    }
    if let Some(v) = &input.role {
        c.role = v.clone();
    }
    if let Some(v) = &input.description {
        c.description = v.clone();
    }
    if let Some(v) = input.timeout {
        c.timeout_s = int_in(v);
    }
    if let Some(v) = input.memory_size {
        c.memory_mb = int_in(v);
    }
    if let Some(env) = &input.environment {
        c.environment = env.variables.clone().unwrap_or_default();
    }
    if let Some(e) = &input.ephemeral_storage {
        c.ephemeral_mb = e.size;
    }
    if let Some(l) = &input.logging_config {
        c.logging.apply(
            l.log_format.as_deref(),
            l.application_log_level.as_deref(),
            l.system_log_level.as_deref(),
            l.log_group.as_deref(),
        )?;
    }
    if let Some(t) = input.tracing_config.as_ref().and_then(|t| t.mode.clone()) {
        if !matches!(t.as_str(), "Active" | "PassThrough") {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{t}' at 'tracingConfig.mode' failed to satisfy constraint: Member must satisfy enum value set: [Active, PassThrough]"
            )));
        }
        c.tracing_mode = t;
    }
    if let Some(layers) = &input.layers {
        c.layers = layers.clone();
    }
    for (k, v) in &input.rest {
        if PASSTHROUGH_MEMBERS.contains(&k.as_str()) {
            c.passthrough.insert(k.clone(), v.clone());
        }
    }
    Ok(())
}

fn validate_tags(tags: &BTreeMap<String, String>) -> ApiResult<()> {
    if tags.len() > limits::TAGS_MAX {
        return Err(ApiError::invalid(format!(
            "Too many tags: a function can have at most {}",
            limits::TAGS_MAX
        )));
    }
    for (k, v) in tags {
        if k.is_empty()
            || k.chars().count() > 128
            || v.chars().count() > 256
            || k.starts_with("aws:")
        {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value at 'tags' failed to satisfy constraint: Map keys must have length between 1 and 128 and values at most 256, and keys may not start with 'aws:' (key '{k}')"
            )));
        }
    }
    Ok(())
}
