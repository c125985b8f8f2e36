"""Nimbus Python runtime bootstrap (AWS Lambda compatible).

Started by the Nimbus server as

    <python> -I -S -B -u <runtime_dir>/python/bootstrap.py

with cwd = the function's code directory.  It speaks the Lambda Runtime API
(/2018-06-01/runtime/...) over a single keep-alive HTTP/1.1 connection and
reproduces the observable behaviour of AWS Lambda's Python runtime interface
client (awslambdaric 4.2.2): handler loading and its init-error types, the
context object, event/response marshalling, error payloads, the X-Ray cause
header, and the root-logger configuration (Text and JSON log formats).

Cold start is the main design constraint.  Only tiny builtin modules are
imported up front (`_socket`, `_json`, `os`); `json`, `socket`, `http.client`,
`logging` and `traceback` each pull in `re`/`enum`/`email`/... and together
cost 15-30 ms on a small machine, so:
  * HTTP is spoken with a minimal raw-socket client (Content-Length and
    chunked bodies);
  * JSON uses the C accelerator `_json` directly with exactly the settings
    `json.dumps()`/`json.loads()` use; anything unusual (errors, exotic input
    encodings) falls back to the real `json` module, so results and error
    messages are identical to the stdlib;
  * `logging` is configured the moment somebody imports it (an import hook),
    so functions that never log never pay for it, while functions that do see
    a root logger configured exactly like on Lambda;
  * `traceback` is imported on error paths only.

Layout of this file: `python file.py` compiles the whole file on every start
(scripts are never cached), and compiling the implementation costs ~10 ms on a
small machine -- as much as everything else the runtime does before its first
/next.  So the implementation lives in the raw string `_IMPL` below; the stub
at the bottom compiles it once per interpreter version, caches the bytecode
in `__pycache__/` next to this file (the runtime dir, owned by the server;
written even under -B, which is meant for user code), and execs it into this
module.  Line numbers are preserved, so tracebacks point at this file.  The
implementation is ordinary Python: keep it free of triple single quotes.

Python 3.8+ standard library only.  Single self-contained file.
"""

import sys

_IMPL_LINE = sys._getframe().f_lineno  # _IMPL's text starts on the next line
_IMPL = r'''
import sys
import os
import time
import _socket

try:
    import _json
except ImportError:  # pragma: no cover - every CPython build ships _json
    _json = None

# ---------------------------------------------------------------------------
# Constants

_API_PREFIX = "/2018-06-01/runtime"
_NEXT_PATH = _API_PREFIX + "/invocation/next"
_INIT_ERROR_PATH = _API_PREFIX + "/init/error"
_USER_AGENT = "aws-lambda-python/%d.%d.%d-nimbus" % sys.version_info[:3]

_ERROR_LOG_LINE_TERMINATE = "\r"
_ERROR_LOG_IDENT = "\u00a0"  # NO-BREAK SPACE replaces leading blanks in error reports
# awslambdaric drops the (optional) X-Ray cause header at >= 1 MiB; HTTP servers
# commonly reject header lines far smaller than that (hyper ~400 KB, Python's
# http.server 64 KiB), and a rejected POST would lose the error itself, so the
# header is dropped from 64 KiB on.
_XRAY_HEADER_MAX = 64 * 1024

_MARSHAL_ERROR = "Runtime.MarshalError"
_UNMARSHAL_ERROR = "Runtime.UnmarshalError"
_USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
_HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
_IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
_BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
_MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
_CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

_UNHANDLED_WARNING = (
    "LAMBDA_WARNING: "
    "Unhandled exception. "
    "The most likely cause is an issue in the function code. "
    "However, in rare cases, a Lambda runtime update can cause unexpected function behavior. "
    "For functions using managed runtimes, runtime updates can be triggered by a function change, "
    "or can be applied automatically. "
    "To determine if the runtime has been updated, check the runtime version in the INIT_START log entry. "
    "If this error correlates with a change in the runtime version, you may be able to mitigate this "
    "error by temporarily rolling back to the previous runtime version. "
    "For more information, see https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html\r"
)

# Managed python3.12+ runtimes emit non-ASCII JSON (awslambdaric keys this off
# AWS_EXECUTION_ENV); everything else gets \uXXXX escapes.
_NON_ASCII_ENVS = (
    "AWS_Lambda_python3.12",
    "AWS_Lambda_python3.13",
    "AWS_Lambda_python3.14",
    "AWS_Lambda_python3.15",
)
_ENSURE_ASCII = os.environ.get("AWS_EXECUTION_ENV") not in _NON_ASCII_ENVS

_LOG_FORMAT_JSON = (os.environ.get("AWS_LAMBDA_LOG_FORMAT") or "").upper() == "JSON"
# awslambdaric: None -> "", "TRACE" -> "DEBUG", anything else upper-cased and
# applied only if it names a logging level (so e.g. "trace" is ignored).
_raw_level = os.environ.get("AWS_LAMBDA_LOG_LEVEL")
_LOG_LEVEL = {None: "", "TRACE": "DEBUG"}.get(_raw_level, _raw_level).upper()
del _raw_level

# Per-invocation state read by the logging filter (same semantics as
# awslambdaric's module globals: request id stays set after the invoke).
_current_request_id = None
_current_tenant_id = None


class _FaultException(Exception):
    """A runtime-detected fault with a Lambda error type (Runtime.*)."""

    def __init__(self, exception_type, msg, trace=None):
        Exception.__init__(self, msg)
        self.exception_type = exception_type
        self.msg = msg
        self.trace = trace


# ---------------------------------------------------------------------------
# JSON (fast path through the _json C accelerator, stdlib json as fallback)

_NAN = float("nan")
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": _NAN}
_JSON_WS = " \t\n\r"
# Decimals are emitted verbatim (simplejson's use in awslambdaric): the
# default hook returns a tagged string which is spliced back as a raw number.
_DECIMAL_TAG = "\x00nimbus-decimal-%x:" % (time.time_ns() ^ (os.getpid() << 20))
_DECIMAL_OPEN = '"\\u0000' + _DECIMAL_TAG[1:]
_DECIMAL_CLOSE = '\\u0000"'


class _ScanContext(object):
    # Attributes read by _json.make_scanner; identical to json.JSONDecoder().
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__
    memo = None


if _json is not None:
    try:
        _scan_once = _json.make_scanner(_ScanContext())
    except Exception:  # pragma: no cover
        _scan_once = None
    _encode_ascii = _json.encode_basestring_ascii
    _encode_unicode = _json.encode_basestring
    _make_encoder = _json.make_encoder
else:  # pragma: no cover
    _scan_once = _make_encoder = None


def _json_loads(data):
    """Equivalent of json.loads(data) for str/bytes."""
    if _scan_once is not None:
        try:
            if isinstance(data, str):
                s = data
            elif (
                isinstance(data, (bytes, bytearray))
                and 0 not in data[:4]
                and data[:1] not in (b"\xef", b"\xfe", b"\xff")
            ):
                # json.detect_encoding() would answer 'utf-8' for this input.
                s = data.decode("utf-8", "surrogatepass")
            else:
                s = None
            if s is not None:
                n = len(s)
                i = 0
                while i < n and s[i] in _JSON_WS:
                    i += 1
                obj, end = _scan_once(s, i)
                j = n
                while j > end and s[j - 1] in _JSON_WS:
                    j -= 1
                if j == end:
                    return obj
        except Exception:
            pass
    # Unusual or invalid input: let the stdlib produce the exact result/error.
    import json

    return json.loads(data)


def _marshal_default(o):
    dec = sys.modules.get("decimal")
    if dec is not None and isinstance(o, dec.Decimal):
        if o.is_nan():
            return _NAN
        return _DECIMAL_TAG + str(o) + "\x00"
    if isinstance(o, bytes):
        # simplejson (used by awslambdaric) encodes bytes as UTF-8 text.
        return o.decode("utf-8")
    raise TypeError("Object of type %s is not JSON serializable" % o.__class__.__name__)


def _json_dumps(obj, ensure_ascii=True, default=_marshal_default):
    """json.dumps(obj) with default separators; Decimal/bytes like simplejson.

    With default=str (used by the JSON log formatter) this is exactly
    json.dumps(obj, ensure_ascii=..., default=str).
    """
    if _make_encoder is None:  # pragma: no cover
        import json

        s = json.dumps(obj, ensure_ascii=ensure_ascii, default=default)
    else:
        encoder = _make_encoder(
            {},  # fresh markers (circular reference detection) per call
            default,
            _encode_ascii if ensure_ascii else _encode_unicode,
            None,
            ": ",
            ", ",
            False,
            False,
            True,
        )
        s = "".join(encoder(obj, 0))
    if default is _marshal_default and _DECIMAL_OPEN in s:
        parts = s.split(_DECIMAL_OPEN)
        out = [parts[0]]
        for part in parts[1:]:
            k = part.find(_DECIMAL_CLOSE)
            out.append(part[:k])
            out.append(part[k + len(_DECIMAL_CLOSE):])
        s = "".join(out)
    return s


def _to_json(obj):
    """awslambdaric's to_json(): response/error payload encoding."""
    return _json_dumps(obj, _ENSURE_ASCII)


# ---------------------------------------------------------------------------
# Minimal HTTP/1.1 client for the Runtime API (one persistent connection)


class _RuntimeAPIError(Exception):
    pass


class _ConnectionLost(Exception):
    pass


def _quote_path_segment(value):
    safe = "-._~:@!$&'()*+,;=ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    if all(c in safe for c in value):
        return value
    return "".join(
        c if c in safe else "".join("%%%02X" % b for b in c.encode("utf-8")) for c in value
    )


class _RuntimeAPIClient(object):
    def __init__(self, address):
        self.address = address
        host, port = address, 80
        if address.startswith("["):  # [ipv6]:port
            end = address.find("]")
            host = address[1:end]
            rest = address[end + 1:]
            if rest.startswith(":") and rest[1:]:
                port = int(rest[1:])
        elif address.count(":") == 1:
            host, _, p = address.partition(":")
            port = int(p) if p else 80
        self._host = host
        self._port = port
        self._sock = None
        self._buf = bytearray()
        self._got_bytes = False

    # -- connection management -------------------------------------------
    def _connect(self):
        err = None
        host = self._host
        try:
            # A str host makes getaddrinfo() import the idna codec (and with
            # it re/enum/...: ~15 ms); ASCII bytes skip that.
            host = host.encode("ascii")
        except UnicodeError:
            pass
        for family, socktype, proto, _canon, sockaddr in _socket.getaddrinfo(
            host, self._port, 0, _socket.SOCK_STREAM
        ):
            sock = None
            try:
                sock = _socket.socket(family, socktype, proto)
                try:
                    sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
                except OSError:
                    pass
                sock.connect(sockaddr)
                self._sock = sock
                self._buf = bytearray()
                return
            except OSError as e:
                err = e
                if sock is not None:
                    sock.close()
        raise err if err is not None else OSError("cannot resolve %r" % self.address)

    def close(self):
        sock, self._sock = self._sock, None
        self._buf = bytearray()
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    # -- buffered reading ----------------------------------------------------
    def _fill(self):
        data = self._sock.recv(65536)
        if not data:
            raise _ConnectionLost("connection closed by the Runtime API")
        self._got_bytes = True
        self._buf += data

    def _readline(self):
        buf = self._buf
        start = 0
        while True:
            i = buf.find(b"\n", start)
            if i >= 0:
                line = bytes(buf[: i + 1])
                del buf[: i + 1]
                return line
            if len(buf) > 1048576:
                raise _RuntimeAPIError("HTTP header line too long")
            start = len(buf)
            self._fill()

    def _readexact(self, n):
        buf = self._buf
        have = len(buf)
        if have >= n:
            data = bytes(buf[:n])
            del buf[:n]
            return data
        out = bytearray(n)
        out[:have] = buf
        del buf[:]
        view = memoryview(out)
        pos = have
        sock = self._sock
        while pos < n:
            k = sock.recv_into(view[pos:], n - pos)
            if not k:
                raise _ConnectionLost("connection closed while reading body")
            self._got_bytes = True
            pos += k
        view.release()
        return bytes(out)

    def _readall(self):
        sock = self._sock
        while True:
            data = sock.recv(1048576)
            if not data:
                break
            self._buf += data
        data = bytes(self._buf)
        del self._buf[:]
        return data

    def _read_chunked(self):
        parts = []
        while True:
            line = self._readline().split(b";", 1)[0].strip()
            size = int(line, 16)
            if size == 0:
                while self._readline().strip():  # trailers
                    pass
                return b"".join(parts)
            parts.append(self._readexact(size))
            self._readline()  # CRLF after the chunk

    def _read_response(self, method):
        while True:
            status_line = self._readline()
            parts = status_line.split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
                raise _RuntimeAPIError("malformed HTTP status line %r" % status_line[:200])
            version = parts[0]
            status = int(parts[1])
            headers = {}
            count = 0
            while True:
                line = self._readline()
                if line in (b"\r\n", b"\n"):
                    break
                count += 1
                if count > 500:
                    raise _RuntimeAPIError("too many HTTP headers")
                name, sep, value = line.partition(b":")
                if sep:
                    headers[name.strip().decode("latin-1").lower()] = value.strip().decode(
                        "latin-1"
                    )
            if 100 <= status < 200 and status != 101:
                continue  # informational (e.g. 100 Continue): read the real response
            break
        conn = headers.get("connection", "").lower()
        keep_alive = ("close" not in conn) if version == b"HTTP/1.1" else ("keep-alive" in conn)
        if method == "HEAD" or status in (204, 304):
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked()
        elif "content-length" in headers:
            body = self._readexact(int(headers["content-length"]))
        else:
            body = self._readall()
            keep_alive = False
        if not keep_alive:
            self.close()
        return status, headers, body

    # -- requests --------------------------------------------------------------
    def request(self, method, path, body=None, headers=None):
        head = ["%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\n" % (method, path, self.address, _USER_AGENT)]
        if headers:
            for k, v in headers.items():
                head.append("%s: %s\r\n" % (k, v.replace("\r", " ").replace("\n", " ")))
        if body is not None:
            head.append("Content-Length: %d\r\n" % len(body))
        head.append("\r\n")
        head = "".join(head).encode("latin-1", "replace")
        for attempt in (0, 1):
            reused = self._sock is not None
            try:
                if not reused:
                    self._connect()
                self._got_bytes = False
                if body is None:
                    self._sock.sendall(head)
                elif len(body) <= 262144:
                    self._sock.sendall(head + body)
                else:
                    self._sock.sendall(head)
                    self._sock.sendall(body)
                return self._read_response(method)
            except (OSError, _ConnectionLost) as e:
                got_bytes = self._got_bytes
                self.close()
                # A kept-alive connection may have been closed by the peer
                # before it saw our request: retry once on a fresh one (this
                # is what libcurl does for awslambdaric).
                if attempt == 0 and reused and not got_bytes:
                    continue
                raise _RuntimeAPIError("%s %s failed: %s" % (method, path, e))
            except Exception:
                self.close()
                raise

    # -- Runtime API calls ---------------------------------------------------
    def next_invocation(self):
        status, headers, body = self.request("GET", _NEXT_PATH)
        if not 200 <= status < 300:
            raise _RuntimeAPIError(
                "Failed to get next invocation. Http Response code: %d. Body: %r" % (status, body[:1000])
            )
        if not headers.get("lambda-runtime-aws-request-id"):
            raise _RuntimeAPIError("Failed to get next invocation: no Lambda-Runtime-Aws-Request-Id header")
        return headers, body

    def _post(self, path, body, headers, what):
        status, _headers, resp = self.request("POST", path, body, headers)
        if not 200 <= status < 300:
            raise _RuntimeAPIError(
                "Failed to post %s. HTTP response code: %d. Body: %r" % (what, status, resp[:1000])
            )

    def post_invocation_result(self, request_id, data, content_type):
        self._post(
            "%s/invocation/%s/response" % (_API_PREFIX, _quote_path_segment(request_id)),
            data,
            {"Content-Type": content_type},
            "invocation response",
        )

    def post_invocation_error(self, request_id, error_json, xray_fault_json):
        headers = {"Content-Type": "application/json"}
        if xray_fault_json:
            headers["Lambda-Runtime-Function-XRay-Error-Cause"] = xray_fault_json
        self._post(
            "%s/invocation/%s/error" % (_API_PREFIX, _quote_path_segment(request_id)),
            error_json.encode("utf-8", "surrogatepass"),
            headers,
            "invocation error",
        )

    def post_init_error(self, error_result):
        body = _to_json(error_result).encode("utf-8", "surrogatepass")
        status, _h, resp = self.request(
            "POST",
            _INIT_ERROR_PATH,
            body,
            {"Lambda-Runtime-Function-Error-Type": error_result["errorType"]},
        )
        if status != 202:  # awslambdaric insists on exactly 202 here
            raise _RuntimeAPIError(
                "Request to Lambda Runtime '%s' endpoint failed. Reason: '%d'. Response body: '%r'"
                % (_INIT_ERROR_PATH, status, resp[:1000])
            )


# ---------------------------------------------------------------------------
# Context object (attribute names/semantics of awslambdaric's LambdaContext)

_W3C_FIELDS = ("traceparent", "tracestate", "baggage")


class CognitoIdentity(object):
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __repr__(self):
        return "CognitoIdentity([cognito_identity_id=%s,cognito_identity_pool_id=%s])" % (
            self.cognito_identity_id,
            self.cognito_identity_pool_id,
        )


class Client(object):
    __slots__ = [
        "installation_id",
        "app_title",
        "app_version_name",
        "app_version_code",
        "app_package_name",
    ]

    def __repr__(self):
        return (
            "Client([installation_id=%s,app_title=%s,app_version_name=%s,"
            "app_version_code=%s,app_package_name=%s])"
            % (
                self.installation_id,
                self.app_title,
                self.app_version_name,
                self.app_version_code,
                self.app_package_name,
            )
        )


class ClientContext(object):
    __slots__ = ["custom", "env", "client"]

    def __repr__(self):
        return "ClientContext([custom=%s,env=%s,client=%s])" % (self.custom, self.env, self.client)


def _obj_from_dict(cls, data):
    if data is None:
        return None
    obj = cls()
    for field in cls.__slots__:
        setattr(obj, field, data.get(field, None))
    return obj


class LambdaContext(object):
    def __init__(
        self,
        invoke_id,
        client_context,
        cognito_identity,
        epoch_deadline_time_in_ms,
        invoked_function_arn=None,
        tenant_id=None,
    ):
        environ = os.environ
        self.aws_request_id = invoke_id
        self.log_group_name = environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = environ.get("AWS_LAMBDA_FUNCTION_NAME")
        # A string, as on Lambda (the env value is passed through unchanged).
        self.memory_limit_in_mb = environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id

        w3c = {}
        if isinstance(client_context, dict) and "w3c" in client_context:
            raw = client_context.pop("w3c")
            if isinstance(raw, dict):
                for key in _W3C_FIELDS:
                    value = raw.get(key)
                    if isinstance(value, str):
                        w3c[key] = value
        self._w3c_fields = w3c

        self.client_context = _obj_from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _obj_from_dict(Client, self.client_context.client)

        self.identity = _obj_from_dict(CognitoIdentity, {})
        if cognito_identity is not None:
            self.identity.cognito_identity_id = cognito_identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = cognito_identity.get("cognitoIdentityPoolId")

        self._epoch_deadline_time_in_ms = epoch_deadline_time_in_ms

    def get_remaining_time_in_millis(self):
        delta = self._epoch_deadline_time_in_ms - int(time.time() * 1000)
        return delta if delta > 0 else 0

    def w3c(self):
        return dict(self._w3c_fields)

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        return (
            "LambdaContext([aws_request_id=%s,log_group_name=%s,log_stream_name=%s,"
            "function_name=%s,memory_limit_in_mb=%s,function_version=%s,"
            "invoked_function_arn=%s,client_context=%s,identity=%s,tenant_id=%s])"
            % (
                self.aws_request_id,
                self.log_group_name,
                self.log_stream_name,
                self.function_name,
                self.memory_limit_in_mb,
                self.function_version,
                self.invoked_function_arn,
                self.client_context,
                self.identity,
                self.tenant_id,
            )
        )


# ---------------------------------------------------------------------------
# Error reporting


def _make_error(error_message, error_type, stack_trace, invoke_id=None):
    return {
        "errorMessage": error_message if error_message else "",
        "errorType": error_type if error_type else "",
        "requestId": invoke_id if invoke_id is not None else "",
        "stackTrace": stack_trace if stack_trace else [],
    }


def _is_bootstrap_frame(filename):
    return filename == _SELF_FILENAME or "/bootstrap.py" in filename


def _extract_user_frames(tb):
    """(filename, lineno, name, line) tuples with leading bootstrap frames removed."""
    import traceback

    frames = [(f.filename, f.lineno, f.name, f.line) for f in traceback.extract_tb(tb)]
    for i in range(len(frames)):
        if not _is_bootstrap_frame(frames[i][0]):
            return frames[i:]
    return frames  # awslambdaric keeps everything when all frames are its own


def _format_frames(frames):
    import traceback

    # Plain 4-tuples: no column/caret lines, exactly like awslambdaric.
    return traceback.format_list(frames)


def _build_fault_result(exc, invoke_id=None):
    frames = _extract_user_frames(exc.__traceback__)
    return (
        _make_error(str(exc), type(exc).__name__, _format_frames(frames), invoke_id),
        frames,
    )


def _make_xray_fault(ex_type, ex_msg, working_dir, frames):
    stack = []
    files = []
    for filename, lineno, name, _line in frames:
        stack.append({"label": name, "path": filename, "line": lineno})
        if filename not in files:
            files.append(filename)
    return {
        "working_directory": working_dir,
        "exceptions": [{"message": ex_msg, "type": ex_type, "stack": stack}],
        "paths": files,
    }


def _replace_indentation(line):
    n = len(line) - len(line.lstrip(" "))
    return _ERROR_LOG_IDENT * n + line[n:]


def _log_error(error_result):
    """Write an error report as one log event (awslambdaric's log_error)."""
    if _LOG_FORMAT_JSON:
        record = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time())),
            "level": "ERROR",
        }
        record.update(error_result)
        lines = [_to_json(record)]
    else:
        description = "[ERROR]"
        error_type = error_result.get("errorType")
        if error_type:
            description += " " + error_type
        message = error_result.get("errorMessage")
        if message:
            if error_type:
                description += ":"
            description += " " + message
        lines = [description]
        stack_trace = error_result.get("stackTrace")
        if stack_trace is not None:
            lines.append("Traceback (most recent call last):")
            for element in stack_trace:
                if element == "":
                    lines.append("")
                else:
                    for trace_line in element.splitlines():
                        lines.append(_replace_indentation(trace_line))
    sys.stdout.write(_ERROR_LOG_LINE_TERMINATE.join(lines) + "\n")


# ---------------------------------------------------------------------------
# Logging: configured exactly like Lambda, but only when `logging` is imported.
#
# Lambda (awslambdaric) adds one handler to the root logger before the
# function module is imported.  The root logger keeps Python's default level
# WARNING unless AWS_LAMBDA_LOG_LEVEL names a level, so on Lambda
# `logging.getLogger().info(...)` prints nothing by default, while
# `logging.basicConfig(...)` in user code is a no-op (root already has a
# handler).  Records go to stdout as
#   Text: "[LEVEL]\t<YYYY-MM-DDTHH:MM:SS.mmmZ>\t<request id>\t<message>\n"
#   JSON: {"timestamp","level","message","logger","requestId",...}
# and logging.Formatter.converter is set to time.gmtime (UTC) globally.

_logging_configured = False


def _configure_logging(logging):
    global _logging_configured
    if _logging_configured:
        return
    _logging_configured = True

    logging.Formatter.converter = time.gmtime
    root = logging.getLogger()

    class LambdaLoggerFilter(logging.Filter):
        def filter(self, record):
            record.aws_request_id = _current_request_id or ""
            record.tenant_id = _current_tenant_id
            return True

    class LambdaLoggerHandler(logging.Handler):
        def __init__(self):
            logging.Handler.__init__(self)

        def emit(self, record):
            # Like awslambdaric: no try/except (formatting errors surface in
            # the caller), one write per record.  On Lambda each record is one
            # CloudWatch event (awslambdaric frames it on the telemetry fd);
            # Nimbus splits stdout on "\n", so newlines inside a record are
            # written as "\r" (as awslambdaric does for error reports and
            # Node's runtime for console records) and every record ends with
            # exactly one "\n" (awslambdaric leaves logger.exception() output
            # unterminated).
            msg = self.format(record)
            if msg.endswith("\n"):
                msg = msg[:-1]
            sys.stdout.write(msg.replace("\n", "\r") + "\n")

    if _LOG_FORMAT_JSON:
        reserved = frozenset(
            (
                "name", "msg", "args", "levelname", "levelno", "pathname", "filename",
                "module", "exc_info", "exc_text", "stack_info", "lineno", "funcName",
                "created", "msecs", "relativeCreated", "thread", "threadName",
                "processName", "process", "aws_request_id", "tenant_id", "_frame_type",
            )
        )

        class JsonFormatter(logging.Formatter):
            def __init__(self):
                logging.Formatter.__init__(self, datefmt="%Y-%m-%dT%H:%M:%SZ")

            def format(self, record):
                levelno = min(50, max(0, record.levelno)) // 10 * 10
                record.levelno = levelno
                record.levelname = logging.getLevelName(levelno)
                exc_info = record.exc_info
                if exc_info and exc_info[0] is None:
                    exc_info = None  # logger.exception() outside an except block
                if exc_info:
                    import traceback

                    stack = traceback.format_tb(exc_info[2])
                    err_type = exc_info[0].__name__
                    err_msg = str(exc_info[1])
                    location = "%s:%s:%s" % (record.pathname, record.funcName, record.lineno)
                else:
                    stack = err_type = err_msg = location = None
                msg = record.msg
                result = {
                    "timestamp": self.formatTime(record, self.datefmt),
                    "level": record.levelname,
                    "message": msg if isinstance(msg, dict) and not record.args else record.getMessage(),
                    "logger": record.name,
                    "stackTrace": stack,
                    "errorType": err_type,
                    "errorMessage": err_msg,
                    "requestId": getattr(record, "aws_request_id", None),
                    "location": location,
                }
                tenant_id = getattr(record, "tenant_id", None)
                if tenant_id is not None:
                    result["tenantId"] = tenant_id
                for key, value in record.__dict__.items():
                    if key not in reserved and key not in result:
                        result[key] = value
                result = {k: v for k, v in result.items() if v is not None}
                return _json_dumps(result, ensure_ascii=False, default=str) + "\n"

        formatter = JsonFormatter()
    else:
        formatter = logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            "%Y-%m-%dT%H:%M:%S",
        )

    handler = LambdaLoggerHandler()
    handler.setFormatter(formatter)
    if _LOG_LEVEL in logging._nameToLevel:
        root.setLevel(_LOG_LEVEL)
    handler.addFilter(LambdaLoggerFilter())
    root.addHandler(handler)


def _configure_logging_safely(module):
    try:
        _configure_logging(module)
    except Exception as e:  # never break the user's `import logging`
        sys.stderr.write("nimbus bootstrap: failed to configure logging: %r\n" % (e,))


class _LoggingLoader(object):
    """Wraps the real loader of `logging`; configures it right after exec."""

    def __init__(self, loader, spec):
        self._loader = loader
        self._spec = spec

    def create_module(self, spec):
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module):
        loader = self._loader
        self._spec.loader = loader  # restore before the module runs
        try:
            module.__loader__ = loader
        except Exception:
            pass
        _uninstall_logging_hook()
        loader.exec_module(module)
        _configure_logging_safely(module)

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _LoggingImportHook(object):
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "logging" or _logging_configured:
            return None
        try:
            for finder in sys.meta_path:
                if finder is _LoggingImportHook:
                    continue
                find = getattr(finder, "find_spec", None)
                if find is None:
                    continue
                spec = find(name, path, target)
                if spec is not None:
                    break
            else:
                return None
            if spec.loader is None or not hasattr(spec.loader, "exec_module"):
                return None
            spec.loader = _LoggingLoader(spec.loader, spec)
            return spec
        except Exception:
            return None


def _install_logging_hook():
    mod = sys.modules.get("logging")
    if mod is not None:
        _configure_logging_safely(mod)
    else:
        sys.meta_path.insert(0, _LoggingImportHook)


def _uninstall_logging_hook():
    try:
        sys.meta_path.remove(_LoggingImportHook)
    except ValueError:
        pass


def _ensure_logging():
    """Import (and thereby configure) logging; returns the module."""
    import logging

    if not _logging_configured:  # imported behind our back
        _configure_logging_safely(logging)
    return logging


# ---------------------------------------------------------------------------
# Handler loading


def _get_handler(handler):
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise _FaultException(_MALFORMED_HANDLER_NAME, "Bad handler '{}': {}".format(handler, str(e)))

    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            raise _FaultException(
                _BUILT_IN_MODULE_CONFLICT,
                "Cannot use built-in module {} as a handler module".format(modname),
            )
        import importlib

        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise _FaultException(
            _IMPORT_MODULE_ERROR, "Unable to import module '{}': {}".format(modname, str(e))
        )
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise _FaultException(
            _USER_CODE_SYNTAX_ERROR,
            "Syntax error in module '{}': {}".format(modname, str(e)),
            trace,
        )

    try:
        return getattr(module, fname)
    except AttributeError:
        raise _FaultException(
            _HANDLER_NOT_FOUND, "Handler '{}' missing on module '{}'".format(fname, modname)
        )


# ---------------------------------------------------------------------------
# Invocation


def _parse_json_header(value, name):
    try:
        return _json_loads(value)
    except Exception as e:
        raise _FaultException(
            _CONTEXT_UNMARSHAL_ERROR, "Unable to parse {} JSON: {}".format(name, str(e))
        )


def _unmarshal_event(body, content_type):
    # Real Lambda always sends Content-Type; a missing one is treated as JSON.
    if content_type is not None and content_type != "application/json":
        return body
    try:
        return _json_loads(body)
    except Exception as e:
        raise _FaultException(_UNMARSHAL_ERROR, "Unable to unmarshal input: {}".format(str(e)))


def _marshal_response(response):
    if isinstance(response, bytes):
        return response, "application/unknown"
    try:
        return _to_json(response).encode("utf-8"), "application/json"
    except Exception as e:
        raise _FaultException(_MARSHAL_ERROR, "Unable to marshal response: {}".format(str(e)))


def _handle_invoke(client, request_handler, headers, body):
    invoke_id = headers["lambda-runtime-aws-request-id"]
    error_result = None
    try:
        client_context = headers.get("lambda-runtime-client-context")
        client_context = _parse_json_header(client_context, "Client Context") if client_context else None
        cognito = headers.get("lambda-runtime-cognito-identity")
        cognito = _parse_json_header(cognito, "Cognito Identity") if cognito else None
        try:
            deadline = int(headers.get("lambda-runtime-deadline-ms") or 0)
        except ValueError:
            deadline = 0
        context = LambdaContext(
            invoke_id,
            client_context,
            cognito,
            deadline,
            headers.get("lambda-runtime-invoked-function-arn", ""),
            headers.get("lambda-runtime-aws-tenant-id") or None,
        )
        event = _unmarshal_event(body, headers.get("content-type") or None)
        response = request_handler(event, context)
        result, content_type = _marshal_response(response)
    except _FaultException as e:
        xray_fault = _make_xray_fault("LambdaValidationError", e.msg, os.getcwd(), [])
        error_result = _make_error(e.msg, e.exception_type, e.trace, invoke_id)
    except Exception as e:
        error_result, frames = _build_fault_result(e, invoke_id)
        xray_fault = _make_xray_fault(type(e).__name__, str(e), os.getcwd(), frames)
        del e

    if error_result is not None:
        _log_error(error_result)
        xray = _json_dumps(xray_fault, True)
        if len(xray) >= _XRAY_HEADER_MAX:
            xray = ""
        client.post_invocation_error(invoke_id, _to_json(error_result), xray)
    else:
        client.post_invocation_result(invoke_id, result, content_type)


def _update_xray_env(trace_id):
    if trace_id:
        os.environ["_X_AMZN_TRACE_ID"] = trace_id
    elif "_X_AMZN_TRACE_ID" in os.environ:
        del os.environ["_X_AMZN_TRACE_ID"]


# ---------------------------------------------------------------------------
# Process setup


def _setup_sys_path():
    """sys.path = [task root] + PYTHONPATH dirs + interpreter stdlib entries.

    -I makes Python ignore PYTHONPATH and -S keeps the host's site-packages
    out; this rebuilds the path Lambda users expect and drops the bootstrap's
    own directory.
    """
    environ = os.environ
    abspath = os.path.abspath
    task_root = abspath(environ.get("LAMBDA_TASK_ROOT") or os.getcwd())
    own_dir = abspath(os.path.dirname(_SELF_FILENAME))
    extra = []
    for entry in (environ.get("PYTHONPATH") or "").split(os.pathsep):
        if entry:
            entry = abspath(entry)
            if os.path.exists(entry):
                extra.append(entry)
    new_path = [task_root]
    seen = {task_root}
    for entry in extra:
        if entry not in seen:
            seen.add(entry)
            new_path.append(entry)
    has_site = "site" in sys.modules
    for entry in sys.path:
        if not entry:
            continue  # '' = cwd (script dir semantics); task root is already first
        full = abspath(entry)
        if full in seen or full == own_dir:
            continue
        if has_site and os.path.basename(full) in ("site-packages", "dist-packages"):
            continue  # started without -S: still keep the host's packages out
        seen.add(full)
        new_path.append(entry)
    sys.path[:] = new_path


def _setup_streams():
    for stream in (sys.stdout, sys.stderr):
        try:
            encoding = (stream.encoding or "").lower().replace("-", "").replace("_", "")
            if encoding != "utf8":
                stream.reconfigure(encoding="utf-8")  # Lambda runs with LANG=en_US.UTF-8
        except Exception:
            pass


def _install_site_builtins():
    # -S skips `site`, which normally provides exit()/quit(); Lambda has them.
    import builtins

    if hasattr(builtins, "exit"):
        return

    class Quitter(object):
        def __init__(self, name):
            self.name = name

        def __repr__(self):
            return "Use %s() or Ctrl-D (i.e. EOF) to exit" % self.name

        def __call__(self, code=None):
            try:
                sys.stdin.close()
            except Exception:
                pass
            raise SystemExit(code)

    builtins.exit = Quitter("exit")
    builtins.quit = Quitter("quit")


def _flush_streams():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _exit(code):
    """Exit now; don't hang on non-daemon user threads (the platform restarts us)."""
    _flush_streams()
    threading = sys.modules.get("threading")
    if threading is not None:
        try:
            main = threading.main_thread()
            for t in threading.enumerate():
                if t is not main and t.is_alive() and not t.daemon:
                    os._exit(code)
        except Exception:
            os._exit(code)
    sys.exit(code)


def _fatal(message):
    sys.stderr.write("nimbus bootstrap: %s\n" % message)
    _exit(1)


def _report_init_error(client, error_result):
    try:
        _ensure_logging().warning(_UNHANDLED_WARNING)
    except Exception:
        pass
    _log_error(error_result)
    try:
        client.post_init_error(error_result)
    except Exception as e:
        _fatal("failed to report init error: %s" % e)
    _exit(1)


def main():
    global _current_request_id, _current_tenant_id

    _setup_sys_path()
    _setup_streams()
    _install_site_builtins()

    api = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not api:
        _fatal("AWS_LAMBDA_RUNTIME_API is not set")
    handler_name = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("_HANDLER", "")
    client = _RuntimeAPIClient(api)

    _install_logging_hook()
    error_result = None
    try:
        if os.environ.get("AWS_EXECUTION_ENV") == "AWS_Lambda_python3.15" and not os.environ.get(
            "LAMBDA_DISABLE_PREVIEW_WARN"
        ):
            _ensure_logging().warning(
                "LAMBDA_WARNING: This is a preview runtime version and should not be used for "
                "production workloads. For further information and to provide feedback, see "
                "https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html\r"
            )
        request_handler = _get_handler(handler_name)
    except _FaultException as e:
        error_result = _make_error(e.msg, e.exception_type, e.trace)
    except Exception as e:
        error_result = _build_fault_result(e)[0]
        del e
    if "logging" in sys.modules and not _logging_configured:
        _configure_logging_safely(sys.modules["logging"])
    if error_result is not None:
        _report_init_error(client, error_result)

    while True:
        try:
            headers, body = client.next_invocation()
        except Exception as e:
            _fatal("Failed to get next invocation: %s" % e)
        _current_request_id = headers["lambda-runtime-aws-request-id"]
        _current_tenant_id = headers.get("lambda-runtime-aws-tenant-id") or None
        _update_xray_env(headers.get("lambda-runtime-trace-id"))
        try:
            _handle_invoke(client, request_handler, headers, body)
        except _RuntimeAPIError as e:
            _fatal(str(e))
        del headers, body


def _run():
    try:
        main()
    except SystemExit:
        raise
    except BaseException:
        import traceback

        sys.stderr.write("nimbus bootstrap: unexpected error\n" + traceback.format_exc())
        _exit(1)


_SELF_FILENAME = _handle_invoke.__code__.co_filename

'''


def _load_implementation(namespace):
    """Exec _IMPL into `namespace`, using a bytecode cache when possible."""
    import marshal
    import _imp

    filename = namespace.get("__file__") or "<nimbus-bootstrap>"
    # The server precompiles the cache for the path sandboxed runtimes see the file at
    # (/var/runtime/...), where they cannot write it themselves.
    import os

    seen_as = os.environ.pop("_NIMBUS_BOOTSTRAP_SEEN_AS", None) or filename
    source = ("\n" * _IMPL_LINE + _IMPL).encode("utf-8")
    magic = sys.modules["_frozen_importlib_external"].MAGIC_NUMBER
    key = _imp.source_hash(0x4E494D42, source + b"\0" + seen_as.encode("utf-8", "surrogateescape"))
    tag = sys.implementation.cache_tag
    path = None
    code = None
    if tag and filename.endswith(".py"):
        sep = filename.rfind("/")
        path = "%s__pycache__/bootstrap-impl.%s.pyc" % (filename[: sep + 1], tag)
        try:
            with open(path, "rb") as f:
                data = f.read()
            if data[:4] == magic and data[4:12] == key:
                code = marshal.loads(memoryview(data)[12:])
        except Exception:
            code = None
    if code is None:
        code = compile(source, seen_as, "exec", dont_inherit=True)
        if path is not None:
            tmp = "%s.%d.tmp" % (path, os.getpid())
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(tmp, "wb") as f:
                    f.write(magic + key + marshal.dumps(code))
                os.replace(tmp, path)
            except OSError:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
    exec(code, namespace)


_load_implementation(globals())

if __name__ == "__main__" and not __import__("os").environ.get("_NIMBUS_BOOTSTRAP_PRECOMPILE"):
    _run()
