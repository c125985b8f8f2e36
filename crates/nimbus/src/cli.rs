//! The command line for people. Every command is a plain client of the HTTP API (the same
//! one the AWS CLI uses), so it works against any Nimbus the endpoint points at.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use base64::Engine;
use clap::Args;
use serde_json::{json, Value};

#[derive(Args, Debug, Clone)]
pub struct Endpoint {
    /// The Nimbus server.
    #[arg(
        long,
        env = "NIMBUS_ENDPOINT",
        default_value = "http://127.0.0.1:9600",
        global = true
    )]
    endpoint: String,
}

#[derive(Args, Debug)]
pub struct DeployArgs {
    /// A directory (zipped for you) or a .zip file.
    path: PathBuf,
    #[arg(long)]
    name: String,
    #[arg(long)]
    runtime: Option<String>,
    #[arg(long)]
    handler: Option<String>,
    /// Memory in MB.
    #[arg(long)]
    memory: Option<u32>,
    /// Timeout in seconds.
    #[arg(long)]
    timeout: Option<u32>,
    /// Environment variable (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    #[arg(long, default_value = "arn:aws:iam::000000000000:role/nimbus-function")]
    role: String,
    #[command(flatten)]
    endpoint: Endpoint,
}

#[derive(Args, Debug)]
pub struct InvokeArgs {
    name: String,
    /// The event as JSON, or `-` to read it from stdin.
    payload: Option<String>,
    #[command(flatten)]
    endpoint: Endpoint,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    name: String,
    #[command(flatten)]
    endpoint: Endpoint,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    name: String,
    /// Keep printing new lines.
    #[arg(short, long)]
    follow: bool,
    /// How far back to start, e.g. 30s, 10m, 2h, 1d.
    #[arg(long, default_value = "1h")]
    since: String,
    #[command(flatten)]
    endpoint: Endpoint,
}

impl Endpoint {
    /// The server's base URL.
    pub(crate) fn url(&self) -> &str {
        self.endpoint.trim_end_matches('/')
    }
}

pub(crate) struct Client {
    base: String,
    agent: ureq::Agent,
}

pub(crate) struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_slice(&self.body).context("the server's answer is not JSON")
    }

    /// Fails with the AWS error type and message unless the status is 2xx.
    pub(crate) fn ok(self) -> anyhow::Result<Reply> {
        if (200..300).contains(&self.status) {
            return Ok(self);
        }
        let body: Value = serde_json::from_slice(&self.body).unwrap_or(Value::Null);
        let message = body
            .get("message")
            .or_else(|| body.get("Message"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let code = self
            .header("x-amzn-errortype")
            .unwrap_or("Error")
            .to_string();
        Err(anyhow!("{code} (HTTP {}): {message}", self.status))
    }
}

impl Client {
    pub(crate) fn new(e: &Endpoint) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(None)
            .build()
            .into();
        Client {
            base: e.endpoint.trim_end_matches('/').to_string(),
            agent,
        }
    }

    fn finish(
        &self,
        resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> anyhow::Result<Reply> {
        let mut resp = resp.with_context(|| {
            format!(
                "cannot reach Nimbus at {} (is `nimbus serve` running?)",
                self.base
            )
        })?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    pub(crate) fn get(&self, path: &str) -> anyhow::Result<Reply> {
        self.finish(self.agent.get(format!("{}{path}", self.base)).call())
    }

    pub(crate) fn delete(&self, path: &str) -> anyhow::Result<Reply> {
        self.finish(self.agent.delete(format!("{}{path}", self.base)).call())
    }

    pub(crate) fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> anyhow::Result<Reply> {
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "PUT" => self.agent.put(&url),
            _ => self.agent.post(&url),
        };
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let total = body.len();
        if total > 4 * 1024 * 1024 {
            // Large uploads show their progress.
            let mut reader = Progress {
                inner: std::io::Cursor::new(body),
                total,
                sent: 0,
                shown: 0,
                started: Instant::now(),
            };
            let r = req.send(ureq::SendBody::from_reader(&mut reader));
            eprintln!();
            self.finish(r)
        } else {
            self.finish(req.send(&body[..]))
        }
    }

    fn logs(&self, target: &str, input: &Value) -> anyhow::Result<Reply> {
        self.send(
            "POST",
            "/",
            &[
                ("x-amz-target", target),
                ("content-type", "application/x-amz-json-1.1"),
            ],
            serde_json::to_vec(input)?,
        )
    }
}

struct Progress {
    inner: std::io::Cursor<Vec<u8>>,
    total: usize,
    sent: usize,
    shown: usize,
    started: Instant,
}

impl Read for Progress {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sent += n;
        let pct = self.sent * 100 / self.total.max(1);
        if pct >= self.shown + 5 || self.sent == self.total {
            self.shown = pct;
            let mb = |b: usize| b as f64 / 1_048_576.0;
            eprint!(
                "\r  uploading {:5.1} / {:.1} MB  {pct:3}%  {:.1}s",
                mb(self.sent),
                mb(self.total),
                self.started.elapsed().as_secs_f64()
            );
            let _ = std::io::stderr().flush();
        }
        Ok(n)
    }
}

pub(crate) fn encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Zips a directory the way a Lambda user would: every file, relative paths, unix modes
/// kept (so `bootstrap` stays executable), symlinks stored as links.
fn zip_dir(dir: &Path) -> anyhow::Result<Vec<u8>> {
    use zip::write::SimpleFileOptions;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut stack = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let e = e?;
            let t = e.file_type()?;
            if t.is_dir() {
                stack.push(e.path());
            } else {
                files.push(e.path());
            }
        }
    }
    files.sort();
    for path in files {
        let rel = path.strip_prefix(dir)?.to_string_lossy().replace('\\', "/");
        let meta = std::fs::symlink_metadata(&path)?;
        use std::os::unix::fs::PermissionsExt;
        let opts = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(meta.permissions().mode() & 0o777);
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path)?;
            w.add_symlink(rel, target.to_string_lossy(), opts)?;
        } else {
            w.start_file(rel, opts)?;
            w.write_all(&std::fs::read(&path)?)?;
        }
    }
    Ok(w.finish()?.into_inner())
}

pub fn deploy(a: DeployArgs) -> anyhow::Result<ExitCode> {
    let c = Client::new(&a.endpoint);
    let zip = if a.path.is_dir() {
        zip_dir(&a.path)?
    } else {
        std::fs::read(&a.path).with_context(|| format!("reading {}", a.path.display()))?
    };
    eprintln!(
        "packaged {} ({:.1} KB)",
        a.path.display(),
        zip.len() as f64 / 1024.0
    );
    let zip_b64 = base64::engine::general_purpose::STANDARD.encode(&zip);
    let mut config = serde_json::Map::new();
    if let Some(r) = &a.runtime {
        config.insert("Runtime".into(), r.clone().into());
    }
    if let Some(h) = &a.handler {
        config.insert("Handler".into(), h.clone().into());
    }
    if let Some(m) = a.memory {
        config.insert("MemorySize".into(), m.into());
    }
    if let Some(t) = a.timeout {
        config.insert("Timeout".into(), t.into());
    }
    if !a.env.is_empty() {
        let mut vars = serde_json::Map::new();
        for kv in &a.env {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("--env {kv}: expected KEY=VALUE"))?;
            vars.insert(k.into(), v.into());
        }
        config.insert("Environment".into(), json!({ "Variables": vars }));
    }
    let path = format!("/2015-03-31/functions/{}", encode(&a.name));
    let exists = c.get(&path)?.status == 200;
    let json_hdr = [("content-type", "application/json")];
    let started = Instant::now();
    let result = if exists {
        let code = json!({ "ZipFile": zip_b64 });
        c.send(
            "PUT",
            &format!("{path}/code"),
            &json_hdr,
            serde_json::to_vec(&code)?,
        )?
        .ok()?;
        if !config.is_empty() {
            c.send(
                "PUT",
                &format!("{path}/configuration"),
                &json_hdr,
                serde_json::to_vec(&config)?,
            )?
            .ok()?
        } else {
            c.get(&format!("{path}/configuration"))?.ok()?
        }
    } else {
        if a.runtime.is_none() || a.handler.is_none() {
            bail!(
                "{} does not exist yet: --runtime and --handler are needed to create it",
                a.name
            );
        }
        config.insert("FunctionName".into(), a.name.clone().into());
        config.insert("Role".into(), a.role.clone().into());
        config.insert("Code".into(), json!({ "ZipFile": zip_b64 }));
        c.send(
            "POST",
            "/2015-03-31/functions",
            &json_hdr,
            serde_json::to_vec(&config)?,
        )?
        .ok()?
    };
    let f = result.json()?;
    out!(
        "{} {} ({}, {} MB, {} s timeout) in {:.2}s\n  arn:  {}\n  code: {}",
        if exists { "updated" } else { "created" },
        a.name,
        f["Runtime"].as_str().unwrap_or("?"),
        f["MemorySize"],
        f["Timeout"],
        started.elapsed().as_secs_f64(),
        f["FunctionArn"].as_str().unwrap_or("?"),
        f["CodeSha256"].as_str().unwrap_or("?"),
    );
    Ok(ExitCode::SUCCESS)
}

pub fn invoke(a: InvokeArgs) -> anyhow::Result<ExitCode> {
    let c = Client::new(&a.endpoint);
    let payload = match a.payload.as_deref() {
        Some("-") => {
            let mut s = Vec::new();
            std::io::stdin().read_to_end(&mut s)?;
            s
        }
        Some(p) => p.as_bytes().to_vec(),
        None => b"{}".to_vec(),
    };
    let r = c
        .send(
            "POST",
            &format!("/2015-03-31/functions/{}/invocations", encode(&a.name)),
            &[],
            payload,
        )?
        .ok()?;
    let mut out = std::io::stdout();
    out.write_all(&r.body)?;
    if !r.body.ends_with(b"\n") {
        out.write_all(b"\n")?;
    }
    if r.header("x-amz-function-error").is_some() {
        eprintln!(
            "function error ({})",
            r.header("x-amz-function-error").unwrap_or("")
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn ls(e: Endpoint) -> anyhow::Result<ExitCode> {
    let c = Client::new(&e);
    let mut functions = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let path = match &marker {
            Some(m) => format!("/2015-03-31/functions?Marker={}", encode(m)),
            None => "/2015-03-31/functions".to_string(),
        };
        let page = c.get(&path)?.ok()?.json()?;
        functions.extend(page["Functions"].as_array().cloned().unwrap_or_default());
        match page["NextMarker"].as_str() {
            Some(m) => marker = Some(m.to_string()),
            None => break,
        }
    }
    out!(
        "{:<32} {:<16} {:>7} {:>7}  LAST MODIFIED",
        "NAME",
        "RUNTIME",
        "MEMORY",
        "TIMEOUT"
    );
    for f in &functions {
        out!(
            "{:<32} {:<16} {:>7} {:>7}  {}",
            f["FunctionName"].as_str().unwrap_or(""),
            f["Runtime"].as_str().unwrap_or(""),
            format!("{}MB", f["MemorySize"]),
            format!("{}s", f["Timeout"]),
            f["LastModified"].as_str().unwrap_or(""),
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn rm(a: RmArgs) -> anyhow::Result<ExitCode> {
    let c = Client::new(&a.endpoint);
    c.delete(&format!("/2015-03-31/functions/{}", encode(&a.name)))?
        .ok()?;
    out!("deleted {}", a.name);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .with_context(|| format!("--since {s}: expected e.g. 30s, 10m, 2h, 1d"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => bail!("--since {s}: unit must be s, m, h or d"),
    };
    Ok(Duration::from_secs(secs))
}

pub fn logs(a: LogsArgs) -> anyhow::Result<ExitCode> {
    let c = Client::new(&a.endpoint);
    let group = format!("/aws/lambda/{}", a.name);
    let since = parse_duration(&a.since)?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let start = now_ms - since.as_millis() as i64;
    let mut token: Option<String> = None;
    let mut last_id: Option<String> = None;
    loop {
        let mut input = json!({ "logGroupName": group, "startTime": start, "limit": 1000 });
        if let Some(t) = &token {
            input["nextToken"] = t.clone().into();
        }
        let r = c.logs("Logs_20140328.FilterLogEvents", &input)?;
        if r.status == 400
            && r.json()
                .ok()
                .and_then(|v| v["__type"].as_str().map(str::to_owned))
                .as_deref()
                == Some("ResourceNotFoundException")
        {
            if !a.follow {
                bail!("no logs for {} yet", a.name);
            }
        } else {
            let page = r.ok()?.json()?;
            let events = page["events"].as_array().cloned().unwrap_or_default();
            let mut out = std::io::stdout().lock();
            for e in &events {
                let id = e["eventId"].as_str().map(str::to_owned);
                if last_id.is_some() && id <= last_id {
                    continue;
                }
                writeln!(out, "{}", e["message"].as_str().unwrap_or(""))?;
                last_id = id;
            }
            out.flush()?;
            if let Some(t) = page["nextToken"].as_str() {
                token = Some(t.to_string());
                continue;
            }
            if let Some(id) = &last_id {
                // Resume after the last event we printed.
                token = Some(id.trim_start_matches('0').to_string());
            }
        }
        if !a.follow {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn format_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .map(nimbus_model::time_fmt::iso_seconds)
        .unwrap_or_else(|_| "-".into())
}

/// `nimbus schedules`: scheduled rules and when each fires next.
pub fn schedules(e: Endpoint) -> anyhow::Result<ExitCode> {
    let c = Client::new(&e);
    let v = c.get("/_nimbus/schedules")?.ok()?.json()?;
    let rows = v["schedules"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        out!("no scheduled rules");
        return Ok(ExitCode::SUCCESS);
    }
    out!(
        "{:<28} {:<28} {:<9} {:<21} TARGETS",
        "RULE",
        "EXPRESSION",
        "STATE",
        "NEXT FIRE (UTC)"
    );
    for r in rows {
        let next = r["next_fire_ms"]
            .as_i64()
            .map_or_else(|| "-".into(), format_ms);
        let targets: Vec<&str> = r["targets"]
            .as_array()
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        out!(
            "{:<28} {:<28} {:<9} {:<21} {}",
            r["rule"].as_str().unwrap_or(""),
            r["expression"].as_str().unwrap_or(""),
            r["state"].as_str().unwrap_or(""),
            next,
            if targets.is_empty() {
                "-".to_string()
            } else {
                targets.join(", ")
            },
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct MessagesArgs {
    /// Only messages for this target ARN (a dead-letter queue or destination).
    #[arg(long)]
    target: Option<String>,
    #[command(flatten)]
    endpoint: Endpoint,
}

/// `nimbus messages`: what Nimbus kept for SQS/SNS/S3 targets (dead letters, destination
/// records), one JSON object per line.
pub fn messages(a: MessagesArgs) -> anyhow::Result<ExitCode> {
    let c = Client::new(&a.endpoint);
    let path = match &a.target {
        Some(t) => format!("/_nimbus/messages?target={}", encode(t)),
        None => "/_nimbus/messages".to_string(),
    };
    let v = c.get(&path)?.ok()?.json()?;
    for m in v["messages"].as_array().cloned().unwrap_or_default() {
        out!("{m}");
    }
    Ok(ExitCode::SUCCESS)
}
