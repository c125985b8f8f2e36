//! The function catalog: every function version in memory (so the invoke path never reads
//! the database), written through to the [`Store`] and the code [`Blobs`]. Control-plane
//! writes are serialised by one async mutex; reads are lock-free.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use dashmap::DashMap;
use nimbus_artifact::Blobs;
use nimbus_model::time_fmt::lambda_timestamp;
use nimbus_model::{limits, CodeInfo, FunctionConfig, FunctionRecord, Identity, LoggingConfig};
use nimbus_runtimes::Runtimes;
use nimbus_store::Store;

use crate::error::{ApiError, ApiResult};
use crate::wire::{CodeInput, ConfigInput, CreateFunctionInput, PASSTHROUGH_MEMBERS};

pub struct Catalog {
    identity: Identity,
    store: Arc<dyn Store>,
    blobs: Arc<dyn Blobs>,
    runtimes: Arc<Runtimes>,
    latest: DashMap<String, Arc<FunctionRecord>>,
    write: tokio::sync::Mutex<()>,
}

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
    ) -> ApiResult<Self> {
        let latest = DashMap::new();
        for rec in store.load_functions()? {
            if rec.version == "$LATEST" {
                latest.insert(rec.name.clone(), Arc::new(rec));
            }
        }
        Ok(Catalog {
            identity,
            store,
            blobs,
            runtimes,
            latest,
            write: tokio::sync::Mutex::new(()),
        })
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn get(&self, name: &str) -> Option<Arc<FunctionRecord>> {
        self.latest.get(name).map(|r| r.clone())
    }

    /// `$LATEST` of a function, or Lambda's not-found error for the qualified ARN asked for.
    pub fn resolve(&self, name: &str, qualifier: Option<&str>) -> ApiResult<Arc<FunctionRecord>> {
        let arn = match qualifier {
            Some(q) => self.identity.qualified_arn(name, q),
            None => self.identity.function_arn(name),
        };
        match (self.get(name), qualifier) {
            (Some(f), None | Some("$LATEST")) => Ok(f),
            _ => Err(ApiError::function_not_found(&arn)),
        }
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
    pub fn code_dir(&self, f: &FunctionRecord) -> PathBuf {
        self.blobs.tree(&f.code.sha256_hex)
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
        self.latest.insert(rec.name.clone(), rec.clone());
        Ok(rec)
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
        let mut config = FunctionConfig {
            runtime,
            handler: String::new(),
            role,
            description: String::new(),
            timeout_s: limits::TIMEOUT_DEFAULT_S,
            memory_mb: limits::MEMORY_DEFAULT_MB,
            ephemeral_mb: limits::EPHEMERAL_MIN_MB,
            environment: BTreeMap::new(),
            architectures: input
                .architectures
                .clone()
                .unwrap_or_else(|| vec!["x86_64".into()]),
            logging: LoggingConfig {
                log_format: "Text".into(),
                application_log_level: None,
                system_log_level: None,
                log_group: format!("/aws/lambda/{name}"),
            },
            layers: vec![],
            tracing_mode: "PassThrough".into(),
            passthrough: BTreeMap::new(),
        };
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
        let rec = FunctionRecord {
            name,
            version: "$LATEST".into(),
            config,
            code,
            revision_id: new_revision(),
            last_modified: now(),
            tags,
            generation: 1,
        };
        self.persist(rec)
    }

    fn check_revision(current: &FunctionRecord, wanted: Option<&str>) -> ApiResult<()> {
        match wanted {
            Some(r) if r != current.revision_id => Err(ApiError::precondition(
                "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
            )),
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
        let rec = self.persist(rec)?;
        self.collect_garbage(&old_sha);
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
        self.persist(rec)
    }

    /// DeleteFunction (every version).
    pub async fn delete(&self, name: &str, qualifier: Option<&str>) -> ApiResult<()> {
        let _w = self.write.lock().await;
        if qualifier.is_some_and(|q| q == "$LATEST") {
            return Err(ApiError::invalid(
                "$LATEST version cannot be deleted without deleting the function.",
            ));
        }
        let current = self.resolve(name, qualifier)?;
        self.store.delete_function(name)?;
        self.latest.remove(name);
        self.collect_garbage(&current.code.sha256_hex);
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
        if !self.latest.iter().any(|r| r.code.sha256_hex == sha) {
            self.blobs.remove(sha);
        }
    }
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
        if let Some(v) = &l.log_format {
            c.logging.log_format = v.clone();
        }
        if let Some(v) = &l.log_group {
            c.logging.log_group = v.clone();
        }
        if l.application_log_level.is_some() {
            c.logging.application_log_level = l.application_log_level.clone();
        }
        if l.system_log_level.is_some() {
            c.logging.system_log_level = l.system_log_level.clone();
        }
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
        if !layers.is_empty() {
            return Err(ApiError::invalid(
                "Layers are not supported by this Nimbus version yet",
            ));
        }
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
