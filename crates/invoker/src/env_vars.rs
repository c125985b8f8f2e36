//! The environment variables of an execution environment (lambda-interfaces.md §4.1):
//! the customer's, under Lambda's defaults, under the reserved ones.

use std::path::Path;

use nimbus_model::FunctionRecord;

use crate::Platform;

/// Customer variables that may replace a platform default.
const OVERRIDABLE: &[&str] = &[
    "AWS_LAMBDA_LOG_FORMAT",
    "AWS_LAMBDA_LOG_LEVEL",
    "AWS_XRAY_CONTEXT_MISSING",
    "AWS_XRAY_DAEMON_ADDRESS",
    "LANG",
    "LD_LIBRARY_PATH",
    "PATH",
    "TZ",
    "PYTHONPATH",
    "NODE_PATH",
    "AWS_ENDPOINT_URL",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

/// What one environment's variables depend on besides the function itself.
pub(crate) struct EnvContext<'a> {
    pub opt: Option<&'a Path>,
    pub code_dir: &'a Path,
    pub stream: &'a str,
    pub runtime_api: &'a str,
    pub runtime_env: &'a [(String, String)],
    /// `on-demand` or `provisioned-concurrency`.
    pub init_type: &'static str,
    /// Process isolation: code and layers are at host paths.
    pub host_layout: bool,
    /// The egress proxy sandboxed functions reach the network through, if any.
    pub proxy: Option<&'a str>,
}

pub(crate) fn build(
    platform: &Platform,
    f: &FunctionRecord,
    cx: &EnvContext<'_>,
) -> Vec<(String, String)> {
    let EnvContext {
        opt,
        code_dir,
        stream,
        runtime_api,
        runtime_env,
        init_type,
        host_layout,
        proxy,
    } = *cx;
    let task = code_dir.display().to_string();
    let opt_dir = opt.map_or_else(|| "/opt".to_string(), |o| o.display().to_string());
    let c = &f.config;
    let mut env: Vec<(String, String)> = vec![
        ("LANG".into(), "en_US.UTF-8".into()),
        (
            "PATH".into(),
            format!("/usr/local/bin:/usr/bin/:/bin:{opt_dir}/bin"),
        ),
        (
            "LD_LIBRARY_PATH".into(),
            format!("/lib64:/usr/lib64:{task}:{task}/lib:{opt_dir}/lib"),
        ),
        ("TZ".into(), ":UTC".into()),
        ("AWS_XRAY_CONTEXT_MISSING".into(), "LOG_ERROR".into()),
        (
            "AWS_XRAY_DAEMON_ADDRESS".into(),
            "169.254.79.129:2000".into(),
        ),
        ("_AWS_XRAY_DAEMON_ADDRESS".into(), "169.254.79.129".into()),
        ("_AWS_XRAY_DAEMON_PORT".into(), "2000".into()),
        // boto3 and the other SDKs inside a function reach Nimbus itself.
        ("AWS_ENDPOINT_URL".into(), platform.endpoint_url.clone()),
    ];
    env.extend(runtime_env.iter().cloned());
    if opt.is_some() && host_layout {
        // Layers are not at /opt in process isolation: tell the function where they are.
        env.push(("NIMBUS_OPT_DIR".into(), opt_dir.clone()));
    }
    if let Some(proxy) = proxy {
        // Outbound HTTP(S) goes through the egress proxy; Nimbus and the Runtime API are
        // on the environment's own loopback.
        for k in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
            env.push((k.into(), proxy.into()));
        }
        for k in ["NO_PROXY", "no_proxy"] {
            env.push((k.into(), "127.0.0.1,localhost,::1".into()));
        }
    }
    // ApplicationLogLevel (INFO unless set) reaches the runtime's logger; only with JSON logs.
    if let Some(level) = c.logging.application_level() {
        env.push(("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into()));
        env.push(("AWS_LAMBDA_LOG_LEVEL".into(), level.to_string()));
    }
    for (k, v) in &c.environment {
        if OVERRIDABLE.contains(&k.as_str()) {
            env.retain(|(ek, _)| ek != k);
        }
        if !k.starts_with('_') && !env.iter().any(|(ek, _)| ek == k) {
            env.push((k.clone(), v.clone()));
        }
    }
    let region = &platform.identity.region;
    env.extend([
        ("_HANDLER".into(), c.handler.clone()),
        ("AWS_REGION".into(), region.clone()),
        ("AWS_DEFAULT_REGION".into(), region.clone()),
        ("AWS_LAMBDA_FUNCTION_NAME".into(), f.name.clone()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(),
            c.memory_mb.to_string(),
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), f.version.clone()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE".into(), init_type.into()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME".into(),
            c.logging.log_group.clone(),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME".into(), stream.into()),
        ("AWS_LAMBDA_RUNTIME_API".into(), runtime_api.into()),
        ("LAMBDA_TASK_ROOT".into(), task),
        // Credentials of the execution role: Nimbus accepts any, so these are placeholders.
        ("AWS_ACCESS_KEY_ID".into(), "ASIANIMBUSEXAMPLEKEY".into()),
        (
            "AWS_SECRET_ACCESS_KEY".into(),
            "nimbus/secret/placeholder".into(),
        ),
        ("AWS_SESSION_TOKEN".into(), "nimbus-session-token".into()),
    ]);
    env
}
