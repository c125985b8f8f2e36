// Nimbus Node.js runtime bootstrap.
//
// Started by the Nimbus server as `node <runtime_dir>/node/bootstrap.mjs` with
// cwd = the function's code directory. Implements the client side of the AWS
// Lambda Runtime API (2018-06-01) and the behaviour of AWS Lambda's managed
// Node.js runtime: handler resolution, init errors, async / callback /
// context.succeed-style handlers, the context object, and console patching.
// Uses Node.js built-ins only (Node 18+).

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { format, types as utilTypes } from 'node:util';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Writable } from 'node:stream';

const env = process.env;
const RUNTIME_PATH = '/2018-06-01/runtime';
const USER_AGENT = `aws-lambda-nodejs/${process.version}-nimbus`;
// Require function anchored at this file: the fallback resolution below produces
// Lambda's "Cannot find module 'x'\nRequire stack:\n- <runtime file>" message.
const runtimeRequire = createRequire(import.meta.url);

// ---------------------------------------------------------------------------
// Runtime error classes (name = "Runtime.<Class>", like Lambda).

class ImportModuleError extends Error {}
class HandlerNotFound extends Error {}
class MalformedHandlerName extends Error {}
class UserCodeSyntaxError extends Error {}
class UnhandledPromiseRejection extends Error {
  constructor(reason, promise) {
    super(reason);
    this.reason = reason;
    this.promise = promise;
  }
}
for (const C of [ImportModuleError, HandlerNotFound, MalformedHandlerName, UserCodeSyntaxError, UnhandledPromiseRejection]) {
  Object.defineProperty(C.prototype, 'name', { value: `Runtime.${C.name}`, writable: true, configurable: true });
}

function isErrorLike(e) {
  return (
    e instanceof Error ||
    utilTypes.isNativeError(e) ||
    (e !== null && typeof e === 'object' && typeof e.name === 'string' && typeof e.message === 'string' && typeof e.stack === 'string')
  );
}

const escDel = (s) => (typeof s === 'string' ? s.replace(/\x7F/g, '%7F') : s);

// Body posted to /error and /init/error: {errorType, errorMessage, trace}.
function toRapidResponse(err) {
  try {
    if (isErrorLike(err)) {
      return {
        errorType: escDel(err.name),
        errorMessage: escDel(err.message),
        trace: typeof err.stack === 'string' ? escDel(err.stack).split('\n') : [],
      };
    }
    return { errorType: typeof err, errorMessage: String(err), trace: [] };
  } catch {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

// Text-log rendering of an error: "\t{"errorType",...,"stack":[...]}".
function toFormatted(err) {
  const withProps = (_k, v) => {
    if (v instanceof Error || utilTypes.isNativeError(v)) {
      const out = Object.assign({ errorType: v.name, errorMessage: v.message, code: v.code }, v);
      if (typeof v.stack === 'string') out.stack = v.stack.split('\n');
      return out;
    }
    return v;
  };
  try {
    return '\t' + JSON.stringify(err, withProps);
  } catch {
    return '\t' + JSON.stringify(toRapidResponse(err));
  }
}

// Header value for Lambda-Runtime-Function-XRay-Error-Cause (best effort).
function xrayCause(err) {
  if (!isErrorLike(err)) return undefined;
  try {
    const stack = [];
    for (const line of String(err.stack || '').split('\n')) {
      const m = /^\s*at (?:async )?(?:(.*?) \()?(.*?):(\d+):\d+\)?$/.exec(line);
      if (m) stack.push({ path: m[2], line: Number(m[3]), label: m[1] || 'anonymous' });
    }
    const cause = JSON.stringify({
      working_directory: process.cwd(),
      exceptions: [{ type: escDel(err.name), message: escDel(err.message), stack }],
      paths: [...new Set(stack.map((f) => f.path))],
    });
    // Header values must be latin1 without control characters: escape the rest.
    const safe = cause.replace(/[^\x20-\x7e]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
    return safe.length <= 32768 ? safe : undefined;
  } catch {
    return undefined;
  }
}

function errorHeaders(body, err) {
  const headers = { 'Content-Type': 'application/json' };
  if (typeof body.errorType === 'string') {
    const t = body.errorType.replace(/[^\x20-\x7e]/g, '');
    if (t) headers['Lambda-Runtime-Function-Error-Type'] = t;
  }
  const cause = xrayCause(err);
  if (cause) headers['Lambda-Runtime-Function-XRay-Error-Cause'] = cause;
  return headers;
}

// ---------------------------------------------------------------------------
// Console patching. Text: "<ISO ts>\t<requestId>\t<LEVEL>\t<message>\n" as a
// single write per record (multi-line messages stay one record, newlines as \r).
// JSON (AWS_LAMBDA_LOG_FORMAT=JSON): {"timestamp","level","requestId","message",...}.

const LEVELS = { TRACE: 1, DEBUG: 2, INFO: 3, WARN: 4, ERROR: 5, FATAL: 6 };
const jsonLogs = String(env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';
const minLevel = LEVELS[String(env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase()] || LEVELS.TRACE;
const stdout = process.stdout;
let requestId; // undefined during init, like Lambda ("undefined" in text logs)
let tenantId;

function jsonReplacer(_k, v) {
  if (v instanceof Error || utilTypes.isNativeError(v)) {
    return Object.assign(
      {
        errorType: v.constructor?.name ?? 'UnknownError',
        errorMessage: v.message,
        stackTrace: typeof v.stack === 'string' ? v.stack.split('\n') : v.stack,
      },
      v,
    );
  }
  return v;
}

function jsonRecord(timestamp, level, args) {
  const rec = { timestamp, level, requestId };
  if (tenantId !== undefined) rec.tenantId = tenantId;
  if (args.length <= 1) {
    rec.message = args[0];
    try {
      return JSON.stringify(rec, jsonReplacer);
    } catch {
      rec.message = format(args[0]);
      return JSON.stringify(rec);
    }
  }
  rec.message = format(...args);
  const e = args.find((a) => a instanceof Error || utilTypes.isNativeError(a));
  if (e) {
    rec.errorType = e.constructor?.name ?? 'UnknownError';
    rec.errorMessage = e.message;
    rec.stackTrace = typeof e.stack === 'string' ? e.stack.split('\n') : [];
  }
  return JSON.stringify(rec);
}

function writeRecord(level, args) {
  const ts = new Date().toISOString();
  // As Lambda does on stdout, newlines inside a text record become \r so that the
  // platform, which splits the stream on \n, keeps the record as one log event.
  const line = jsonLogs
    ? jsonRecord(ts, level, args)
    : `${ts}\t${requestId}\t${level}\t${format(...args).replace(/\n/g, '\r')}`;
  stdout.write(line + '\n');
}

function patchConsole() {
  const nop = () => {};
  const methods = [
    ['trace', 'TRACE'],
    ['debug', 'DEBUG'],
    ['info', 'INFO'],
    ['log', 'INFO'],
    ['warn', 'WARN'],
    ['error', 'ERROR'],
    ['fatal', 'FATAL'],
  ];
  for (const [method, level] of methods) {
    console[method] = LEVELS[level] >= minLevel ? (...args) => writeRecord(level, args) : nop;
  }
}

// Runtime-generated error records ("Invoke Error", "Uncaught Exception", ...).
function logRuntimeError(label, err) {
  if (LEVELS.ERROR < minLevel) return;
  if (jsonLogs) {
    const r = toRapidResponse(err);
    writeRecord('ERROR', [{ errorType: r.errorType, errorMessage: r.errorMessage, stackTrace: r.trace }]);
  } else {
    writeRecord('ERROR', [label, toFormatted(err)]);
  }
}

// ---------------------------------------------------------------------------
// Runtime API client: one keep-alive connection (maxSockets 1).

function parseApiAddress(value) {
  let s = String(value || '127.0.0.1:9001').replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  const i = s.lastIndexOf(':');
  let host = s;
  let port = 80;
  if (i > 0 && !s.endsWith(']')) {
    host = s.slice(0, i);
    port = Number(s.slice(i + 1));
  }
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return [host, port];
}

const [API_HOST, API_PORT] = parseApiAddress(env.AWS_LAMBDA_RUNTIME_API);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function apiCall(method, urlPath, body, headers, opts = {}) {
  return new Promise((resolve, reject) => {
    const h = { 'User-Agent': USER_AGENT, ...headers };
    if (body !== undefined) h['Content-Length'] = Buffer.byteLength(body);
    const req = http.request(
      { host: API_HOST, port: API_PORT, method, path: urlPath, headers: h, agent: opts.agent ?? agent },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('close', () => {
          if (!res.complete) reject(new Error(`connection closed while reading ${method} ${urlPath}`));
        });
      },
    );
    req.on('error', (err) => {
      // A kept-alive socket closed by the server just before reuse: retry once.
      if (req.reusedSocket && err.code === 'ECONNRESET' && !opts.retried) {
        resolve(apiCall(method, urlPath, body, headers, { ...opts, retried: true }));
      } else {
        reject(err);
      }
    });
    if (opts.timeout) req.setTimeout(opts.timeout, () => req.destroy(new Error('Runtime API request timed out')));
    req.end(body);
  });
}

// ---------------------------------------------------------------------------
// Response streaming (awslambda.streamifyResponse), as Lambda's Node.js runtime offers it.

const STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const HTTP_INTEGRATION = 'application/vnd.awslambda.http-integration-response';

globalThis.awslambda = {
  streamifyResponse(fn, options) {
    fn[STREAMING] = 'response';
    fn.streamingOptions = options;
    return fn;
  },
  HttpResponseStream: {
    // The HTTP integration's prelude (status, headers, cookies), then 8 NUL bytes, then the body.
    from(stream, prelude) {
      stream.setContentType(HTTP_INTEGRATION);
      stream.write(JSON.stringify(prelude || {}));
      stream.write(Buffer.alloc(8));
      return stream;
    },
  },
};

// A Writable whose bytes go to the Runtime API as one chunked POST /response, opened on the
// first write; a failure is reported in the trailers. `onDone(err)` runs when the platform
// has answered.
function responseStream(invocationPath, onDone) {
  let req = null;
  let contentType = 'application/octet-stream';
  const open = () => {
    if (req) return req;
    req = http.request(
      {
        host: API_HOST,
        port: API_PORT,
        method: 'POST',
        path: `${invocationPath}/response`,
        agent,
        headers: {
          'User-Agent': USER_AGENT,
          'Content-Type': contentType,
          'Lambda-Runtime-Function-Response-Mode': 'streaming',
          'Transfer-Encoding': 'chunked',
          Trailer: 'Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body',
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => onDone(null));
      },
    );
    req.on('error', (err) => onDone(err));
    return req;
  };
  const stream = new Writable({
    write(chunk, _encoding, cb) {
      open().write(chunk, cb);
    },
    final(cb) {
      open().end();
      cb();
    },
  });
  stream.setContentType = (type) => {
    contentType = type;
  };
  stream.fail = (errBody) => {
    if (req && req.writableEnded) return;
    const r = open();
    r.addTrailers({
      'Lambda-Runtime-Function-Error-Type': errBody.errorType || 'Error',
      'Lambda-Runtime-Function-Error-Body': Buffer.from(JSON.stringify(errBody)).toString('base64'),
    });
    r.end();
  };
  return stream;
}

function fatal(err) {
  process.stderr.write(`Nimbus Node.js runtime: Runtime API failure: ${err && err.message ? err.message : err}\n`);
  process.exit(1);
}

// ---------------------------------------------------------------------------
// Handler loading (Lambda semantics: "<path>/<module>.<export[.nested]>").

function folderIsTypeModule(folder) {
  if (folder.endsWith(`${path.sep}node_modules`)) return false;
  const pj = path.join(folder, 'package.json');
  if (fs.existsSync(pj)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(pj, 'utf8'));
      return !!pkg && pkg.type === 'module';
    } catch (e) {
      console.warn(`${pj} cannot be read, it will be ignored for ES module detection purposes.`, e);
      return false;
    }
  }
  const parent = path.dirname(folder);
  return parent === folder ? false : folderIsTypeModule(parent);
}

const importFile = (file) => import(pathToFileURL(file).href);

async function loadModule(appRoot, moduleRoot, moduleName) {
  const base = path.resolve(appRoot, moduleRoot, moduleName);
  if (fs.existsSync(base)) return runtimeRequire(base); // extensionless file (or directory)
  const js = base + '.js';
  const hasJs = fs.existsSync(js);
  if (hasJs) return folderIsTypeModule(path.dirname(js)) ? importFile(js) : runtimeRequire(js);
  if (fs.existsSync(base + '.mjs')) return importFile(base + '.mjs');
  if (fs.existsSync(base + '.cjs')) return runtimeRequire(base + '.cjs');
  // Last resort: a package/module resolvable from the task root (node_modules, NODE_PATH).
  // Fails with "Cannot find module '<name>'\nRequire stack:\n- <this file>".
  return runtimeRequire(runtimeRequire.resolve(moduleName, { paths: [appRoot, path.resolve(appRoot, moduleRoot)] }));
}

async function loadHandler(appRoot, fullHandler) {
  fullHandler = fullHandler || '';
  if (fullHandler.includes('..')) {
    throw new MalformedHandlerName(
      `'${fullHandler}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const moduleAndHandler = path.basename(fullHandler);
  const moduleRoot = fullHandler.substring(0, fullHandler.lastIndexOf(moduleAndHandler));
  const match = /^([^.]*)\.(.*)$/.exec(moduleAndHandler);
  if (!match) throw new MalformedHandlerName('Bad handler');
  const [, moduleName, handlerPath] = match;

  let app;
  try {
    app = await loadModule(appRoot, moduleRoot, moduleName);
  } catch (e) {
    if (e instanceof SyntaxError) throw new UserCodeSyntaxError(String(e));
    if (e && (e.code === 'MODULE_NOT_FOUND' || e.code === 'ERR_MODULE_NOT_FOUND')) throw new ImportModuleError(String(e));
    throw e;
  }
  const fn = handlerPath.split('.').reduce((obj, key) => obj && obj[key], app);
  if (!fn) throw new HandlerNotFound(`${fullHandler} is undefined or not exported`);
  if (typeof fn !== 'function') throw new HandlerNotFound(`${fullHandler} is not a function`);
  return fn;
}

// ---------------------------------------------------------------------------
// Invocation loop.

let handler;
let lastInvokeId; // undefined until the first event: crashes before that are init errors
let nextPending = false;
let crashing = false;
let beforeExitHook = null; // run once when the event loop drains
let invokeSeq = 0; // identifies the current invocation (late callbacks must not touch its hook)

process.on('beforeExit', () => {
  const hook = beforeExitHook;
  beforeExitHook = null;
  if (hook) hook();
});

function crash(err, code) {
  if (crashing) return;
  crashing = true;
  beforeExitHook = null;
  const body = toRapidResponse(err);
  const isInit = lastInvokeId === undefined;
  const urlPath = isInit
    ? `${RUNTIME_PATH}/init/error`
    : `${RUNTIME_PATH}/invocation/${encodeURIComponent(lastInvokeId)}/error`;
  const exitCode = isInit ? 1 : code;
  // If a /next long-poll occupies the shared connection, report on a fresh one.
  const opts = nextPending ? { agent: false, timeout: 3000 } : { timeout: 3000 };
  const exit = () => process.exit(exitCode);
  apiCall('POST', urlPath, JSON.stringify(body), errorHeaders(body, err), opts).then(exit, exit);
}

process.on('uncaughtException', (err) => {
  logRuntimeError('Uncaught Exception', err);
  crash(err, 129);
});

process.on('unhandledRejection', (reason, promise) => {
  let message;
  try {
    message = reason?.toString();
  } catch {
    message = undefined;
  }
  const err = new UnhandledPromiseRejection(message, promise);
  logRuntimeError('Unhandled Promise Rejection', err);
  crash(err, 128);
});

function scheduleNext() {
  setImmediate(nextInvocation);
}

function nextInvocation() {
  if (crashing) return;
  nextPending = true;
  apiCall('GET', `${RUNTIME_PATH}/invocation/next`).then((res) => {
    nextPending = false;
    if (res.status !== 200) return fatal(new Error(`GET /invocation/next returned HTTP ${res.status}: ${res.body}`));
    const id = res.headers['lambda-runtime-aws-request-id'];
    if (!id) return fatal(new Error('GET /invocation/next response lacks Lambda-Runtime-Aws-Request-Id'));
    invoke(id, res.headers, res.body);
  }, fatal);
}

function parseJsonHeader(value, name) {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch (e) {
    throw new Error(`Cannot parse ${name} as json: ${e}`);
  }
}

function invoke(id, headers, body) {
  requestId = id;
  lastInvokeId = id;
  tenantId = headers['lambda-runtime-aws-tenant-id'] || undefined;
  const traceId = headers['lambda-runtime-trace-id'];
  if (traceId) env._X_AMZN_TRACE_ID = traceId;
  else delete env._X_AMZN_TRACE_ID;

  const invocationPath = `${RUNTIME_PATH}/invocation/${encodeURIComponent(id)}`;
  const seq = ++invokeSeq;
  const setHook = (fn) => {
    if (seq === invokeSeq) beforeExitHook = fn;
  };
  let reported = false; // a response or error was posted for this invocation
  let finalized = false; // callback / succeed / fail / done: the first call wins
  let waitForEmptyEventLoop = true;

  const send = (suffix, payload, hdrs) => {
    apiCall('POST', invocationPath + suffix, payload, hdrs).then((res) => {
      if (res.status >= 500) return fatal(new Error(`POST ${suffix} returned HTTP ${res.status}: ${res.body}`));
      if (res.status >= 300) {
        process.stderr.write(`Nimbus Node.js runtime: POST ${suffix} for ${id} returned HTTP ${res.status}: ${res.body}\n`);
      }
      scheduleNext();
    }, fatal);
  };

  const alreadyDone = () => {
    console.error('Invocation has already been reported as done. Cannot call complete more than once per invocation.');
  };

  const postError = (err) => {
    if (crashing) return;
    if (reported) return alreadyDone();
    reported = true;
    logRuntimeError('Invoke Error', err);
    const errBody = toRapidResponse(err);
    send('/error', JSON.stringify(errBody), errorHeaders(errBody, err));
  };

  const complete = (result) => {
    if (crashing) return;
    if (reported) return alreadyDone();
    let payload;
    try {
      payload = JSON.stringify(result === undefined ? null : result);
    } catch {
      return postError(new Error('Unable to stringify response body'));
    }
    reported = true;
    send('/response', payload === undefined ? 'null' : payload, { 'Content-Type': 'application/json' });
  };

  const once =
    (fn) =>
    (...args) => {
      if (finalized) return;
      finalized = true;
      fn(...args);
    };
  const rawDone = (err, result) => {
    setHook(null);
    if (err !== undefined && err !== null) postError(err);
    else complete(result);
  };
  const callback = once((err, result) => {
    setHook(null);
    if (err !== undefined && err !== null) postError(err);
    else if (!waitForEmptyEventLoop) complete(result);
    else setHook(() => setImmediate(() => complete(result)));
  });
  const done = once(rawDone);
  const succeed = once((result) => rawDone(undefined, result));
  const fail = once((err) => rawDone(err === undefined || err === null ? 'handled' : err, null));

  // Nothing answered and nothing left to do: respond null (Lambda behaviour).
  setHook(() => complete(null));

  try {
    const deadline = Number(headers['lambda-runtime-deadline-ms']);
    const context = {
      get callbackWaitsForEmptyEventLoop() {
        return waitForEmptyEventLoop;
      },
      set callbackWaitsForEmptyEventLoop(value) {
        waitForEmptyEventLoop = value;
      },
      succeed,
      fail,
      done,
      functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
      functionName: env.AWS_LAMBDA_FUNCTION_NAME,
      memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
      clientContext: parseJsonHeader(headers['lambda-runtime-client-context'], 'ClientContext'),
      identity: parseJsonHeader(headers['lambda-runtime-cognito-identity'], 'CognitoIdentity'),
      invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
      awsRequestId: id,
      getRemainingTimeInMillis: () => deadline - Date.now(),
    };
    if (tenantId !== undefined) context.tenantId = tenantId;

    if (handler[STREAMING] === 'response') {
      setHook(null);
      reported = true;
      const stream = responseStream(invocationPath, (err) => (err ? fatal(err) : scheduleNext()));
      Promise.resolve()
        .then(() => handler(JSON.parse(body), stream, context))
        .then(
          () => {
            if (!stream.writableEnded) stream.end();
          },
          (err) => {
            logRuntimeError('Invoke Error', err);
            stream.fail(toRapidResponse(err));
          },
        );
      return;
    }
    const result = handler(JSON.parse(body), context, callback);
    if (result !== null && (typeof result === 'object' || typeof result === 'function') && typeof result.then === 'function') {
      result.then(succeed, fail);
    } else if (result !== undefined && handler.length < 3) {
      // Non-callback handler returning a plain value: that value is the result.
      succeed(result);
    }
  } catch (err) {
    fail(err);
  }
}

// ---------------------------------------------------------------------------
// Init.

patchConsole();
try {
  handler = await loadHandler(env.LAMBDA_TASK_ROOT || process.cwd(), env._HANDLER);
} catch (err) {
  logRuntimeError('Uncaught Exception', err);
  crash(err, 1);
}
if (!crashing) scheduleNext();
