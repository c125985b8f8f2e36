//! Function logs on their way to the store. Each environment has one log task that
//! sequences the runtime's output with the platform's START/END/REPORT lines, so a stream
//! reads in the order things happened; every line then goes to one batching writer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use nimbus_model::time_fmt::now_millis;
use nimbus_store::{LogEvent, LogStore};
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot};

/// CloudWatch's largest event; longer lines are split.
const MAX_EVENT_BYTES: usize = 256 * 1024;
/// How much of an invocation's log is kept for `LogType=Tail`.
const CAPTURE_BYTES: usize = 16 * 1024;
/// Lines waiting for the writer; past this, lines are dropped and counted.
const QUEUE: usize = 64 * 1024;

/// Where log lines go. Cheap to clone.
#[derive(Clone, Debug)]
pub struct LogSink {
    tx: mpsc::Sender<LogEvent>,
    dropped: Arc<AtomicU64>,
}

impl LogSink {
    /// Starts the writer that batches lines into `store`.
    pub fn start(store: Arc<dyn LogStore>) -> (LogSink, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<LogEvent>(QUEUE);
        let writer = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(1024);
            while rx.recv_many(&mut batch, 1024).await > 0 {
                let events = std::mem::take(&mut batch);
                let store = store.clone();
                let result = tokio::task::spawn_blocking(move || store.append_logs(&events)).await;
                match result {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "could not store function logs"),
                    Err(e) => tracing::warn!(error = %e, "log writer task failed"),
                }
            }
        });
        (
            LogSink {
                tx,
                dropped: Arc::new(AtomicU64::new(0)),
            },
            writer,
        )
    }

    fn send(&self, event: LogEvent) {
        if self.tx.try_send(event).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Lines dropped because the writer could not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Commands from the invoke path to an environment's log task.
#[derive(Debug)]
pub(crate) enum LogCmd {
    /// A platform line (START, REPORT, …); `after_output`: the runtime's output already in
    /// the pipe goes first (END, REPORT), else the line goes out as it comes (START).
    Platform { line: String, after_output: bool },
    /// Start capturing for `LogType=Tail` (no-op while already capturing).
    Begin,
    /// Drain what the runtime already wrote, stop capturing and return the capture.
    Finish(oneshot::Sender<String>),
}

/// Reads whatever the runtime already wrote, without waiting for more.
fn drain(output: &mut pipe::Receiver, buf: &mut [u8], eof: &mut bool, state: &mut EnvLog) {
    while !*eof {
        match output.try_read(buf) {
            Ok(0) => *eof = true,
            Ok(n) => state.feed(&buf[..n]),
            Err(_) => break,
        }
    }
}

/// Spawns the log task of one environment.
pub(crate) fn spawn_env_log(
    sink: LogSink,
    group: String,
    stream: String,
    mut output: pipe::Receiver,
    mut rx: mpsc::UnboundedReceiver<LogCmd>,
) {
    tokio::spawn(async move {
        let mut state = EnvLog {
            sink,
            group,
            stream,
            partial: Vec::new(),
            capture: None,
        };
        let mut buf = vec![0u8; 64 * 1024];
        let mut eof = false;
        loop {
            tokio::select! {
                biased;
                cmd = rx.recv() => match cmd {
                    None => break,
                    Some(LogCmd::Platform { line, after_output }) => {
                        if after_output {
                            drain(&mut output, &mut buf, &mut eof, &mut state);
                        }
                        state.emit(line);
                    }
                    Some(LogCmd::Begin) => {
                        state.capture.get_or_insert_with(String::new);
                    }
                    Some(LogCmd::Finish(reply)) => {
                        // Whatever the runtime wrote before answering is already in the
                        // pipe: take it now so it lands inside this invocation.
                        drain(&mut output, &mut buf, &mut eof, &mut state);
                        state.flush_partial();
                        let _ = reply.send(state.capture.take().unwrap_or_default());
                    }
                },
                r = output.read_chunk(&mut buf), if !eof => match r {
                    Ok(0) | Err(_) => { eof = true; state.flush_partial(); }
                    Ok(n) => state.feed(&buf[..n]),
                },
            }
        }
        state.flush_partial();
    });
}

trait ReadChunk {
    async fn read_chunk(&mut self, buf: &mut [u8]) -> std::io::Result<usize>;
}

impl ReadChunk for pipe::Receiver {
    async fn read_chunk(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            self.readable().await?;
            match self.try_read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                r => return r,
            }
        }
    }
}

struct EnvLog {
    sink: LogSink,
    group: String,
    stream: String,
    partial: Vec<u8>,
    capture: Option<String>,
}

impl EnvLog {
    fn feed(&mut self, bytes: &[u8]) {
        self.partial.extend_from_slice(bytes);
        while let Some(pos) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=pos).collect();
            self.emit(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
        }
        while self.partial.len() > MAX_EVENT_BYTES {
            let chunk: Vec<u8> = self.partial.drain(..MAX_EVENT_BYTES).collect();
            self.emit(String::from_utf8_lossy(&chunk).into_owned());
        }
    }

    fn flush_partial(&mut self) {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            self.emit(String::from_utf8_lossy(&rest).into_owned());
        }
    }

    fn emit(&mut self, line: String) {
        if let Some(c) = &mut self.capture {
            c.push_str(&line);
            c.push('\n');
            if c.len() > CAPTURE_BYTES * 2 {
                let cut = c.len() - CAPTURE_BYTES;
                let cut = (cut..c.len())
                    .find(|&i| c.is_char_boundary(i))
                    .unwrap_or(c.len());
                c.drain(..cut);
            }
        }
        self.sink.send(LogEvent {
            group: self.group.clone(),
            stream: self.stream.clone(),
            timestamp: now_millis(),
            message: line,
        });
    }
}
