//! Lambda's quotas, as AWS documents them (see `shared/reference/lambda-interfaces.md` §5).

/// Smallest and largest `MemorySize` in MB.
pub const MEMORY_MIN_MB: u32 = 128;
pub const MEMORY_MAX_MB: u32 = 10_240;
pub const MEMORY_DEFAULT_MB: u32 = 128;
/// `Timeout` in seconds.
pub const TIMEOUT_MIN_S: u32 = 1;
pub const TIMEOUT_MAX_S: u32 = 900;
pub const TIMEOUT_DEFAULT_S: u32 = 3;
/// `EphemeralStorage.Size` in MB.
pub const EPHEMERAL_MIN_MB: u32 = 512;
pub const EPHEMERAL_MAX_MB: u32 = 10_240;
/// Total size of the customer's environment variables (keys plus values).
pub const ENV_VARS_MAX_BYTES: usize = 4 * 1024;
/// A zip uploaded directly (`Code.ZipFile`).
pub const ZIP_MAX_BYTES: u64 = 50 * 1024 * 1024;
/// Function code (plus layers) once unzipped.
pub const UNZIPPED_MAX_BYTES: u64 = 250 * 1024 * 1024;
/// Synchronous invoke request and buffered response payloads.
pub const SYNC_PAYLOAD_MAX_BYTES: usize = 6 * 1024 * 1024;
/// What the Runtime API accepts as a buffered response (AWS allows 100 bytes of slack).
pub const RESPONSE_MAX_BYTES: usize = SYNC_PAYLOAD_MAX_BYTES + 100;
/// Asynchronous (`Event`) invoke payloads (raised from 256 KB in 2025).
pub const ASYNC_PAYLOAD_MAX_BYTES: usize = 1024 * 1024;
/// Base64 `X-Amz-Client-Context`.
pub const CLIENT_CONTEXT_MAX_BYTES: usize = 3_583;
/// `LogType=Tail` returns this many bytes of the invocation's log.
pub const LOG_TAIL_BYTES: usize = 4 * 1024;
/// Init phase limit for on-demand environments.
pub const INIT_TIMEOUT_MS: u64 = 10_000;
/// Account defaults reported by GetAccountSettings.
pub const ACCOUNT_CONCURRENCY: u32 = 1_000;
pub const ACCOUNT_TOTAL_CODE_SIZE: u64 = 80_530_636_800;
/// Description length.
pub const DESCRIPTION_MAX_CHARS: usize = 256;
/// Tags per resource.
pub const TAGS_MAX: usize = 50;
