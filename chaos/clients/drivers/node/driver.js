'use strict';
// The `node` client driver: @grpc/grpc-js behind grpc-chaos's client-driver protocol
// (proto/driver.proto, the spec; chaos/clients/drivers/python_grpcio.py, the reference).
//
//     node driver.js      # prints {"driver": "grpc-chaos", "protocol": 1, "port": N}
//
// One grpc.Client per channel, raw bytes in and out; everything runs on Node's one event
// loop, so no locks. Times are process.hrtime.bigint(): libuv reads CLOCK_MONOTONIC on
// Linux, the clock of grpc-chaos's history.
//
// grpc-js resolves dns://SERVER/name with the DNS server in the target only when
// GRPC_NODE_USE_ALTERNATIVE_RESOLVER=true is set before it loads (node_build.py sets it);
// without it, it asks the system resolver (getaddrinfo) and the server is ignored, so such
// a target is refused rather than resolved elsewhere.
//
// Limits: attempts are not counted per RPC (grpc-js does not expose them); Subchannels
// counts them per backend.

const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTOCOL = 1;
const GRPC_JS_VERSION = require('@grpc/grpc-js/package.json').version;
const BATCH_MAX = 512; // records per RecordBatch message
const FLUSH_MS = 20; // how long a record may wait for others to share its batch
const HEARTBEAT_MS = 100; // a batch at least this often, empty if nothing ended (the protocol's)
const ALTERNATIVE_RESOLVER = process.env.GRPC_NODE_USE_ALTERNATIVE_RESOLVER === 'true';

// Portable settings (Settings' fields) and the grpc-js channel options they become. Each is
// read in grpc-js's source (1.14): transport.ts (keepalive), subchannel.ts and
// backoff-timeout.ts (reconnect backoff), resolver-dns.ts (min time between resolutions),
// compression-filter.ts (message sizes), retrying-call.ts (enable_retries). grpc-js has no
// connect timeout of its own (no grpc.min_reconnect_backoff_ms): min_connect_timeout_ms is
// not among them, and a config that sets it is refused.
const OPTION_OF = {
  keepalive_time_ms: 'grpc.keepalive_time_ms',
  keepalive_timeout_ms: 'grpc.keepalive_timeout_ms', // honoured, unlike in grpcio
  keepalive_without_calls: 'grpc.keepalive_permit_without_calls',
  initial_reconnect_backoff_ms: 'grpc.initial_reconnect_backoff_ms',
  max_reconnect_backoff_ms: 'grpc.max_reconnect_backoff_ms',
  dns_min_resolution_interval_ms: 'grpc.dns_min_time_between_resolutions_ms',
  max_receive_message_bytes: 'grpc.max_receive_message_length',
  max_send_message_bytes: 'grpc.max_send_message_length',
  retries: 'grpc.enable_retries',
};
// Client-side options grpc-js reads (channel-options.ts recognizedOptions, each found read
// in its source) that no Settings field covers. Server-only ones are left out.
const OPTIONS = [
  'grpc.client_idle_timeout_ms',
  'grpc.default_authority',
  'grpc.default_compression_algorithm',
  'grpc.enable_channelz',
  'grpc.enable_http_proxy',
  'grpc.per_rpc_retry_buffer_size',
  'grpc.primary_user_agent',
  'grpc.retry_buffer_size',
  'grpc.secondary_user_agent',
  'grpc.service_config_disable_resolution',
  'grpc.ssl_target_name_override',
  'grpc.use_local_subchannel_pool',
  'grpc-node.flow_control_window',
  'grpc-node.max_session_memory',
  'grpc-node.retry_max_attempts_limit',
  'grpc-node.tls_enable_trace',
];
const ACCEPTED = new Set([...OPTIONS, ...Object.values(OPTION_OF)]);
// Registered by load-balancer-{pick-first,round-robin,weighted-round-robin,
// outlier-detection}.ts. Outlier detection is "outlier_detection" (not C core's
// "outlier_detection_experimental") and takes snake_case fields (child_policy, ...).
const LB_POLICIES = ['pick_first', 'round_robin', 'weighted_round_robin'];
if ((process.env.GRPC_EXPERIMENTAL_ENABLE_OUTLIER_DETECTION ?? 'true') === 'true') {
  LB_POLICIES.push('outlier_detection');
}
// Parsed by nothing in grpc-js (service-config.ts keeps loadBalancingPolicy, nothing reads
// it; there is no client-side health checking at all).
const IGNORED_FIELDS = ['healthCheckConfig', 'loadBalancingPolicy'];
// Facts a reader of its verdicts needs (each read in grpc-js's source, file named).
const NOTES = [
  'asks the DNS server named in a dns:// target only with GRPC_NODE_USE_ALTERNATIVE_RESOLVER=true ' +
    `(here: ${ALTERNATIVE_RESOLVER ? 'set' : 'unset'}; resolver-dns.ts)`,
  're-resolves DNS only once connecting to a backend fails, or round_robin has lost every ' +
    'backend (not when a connection merely drops), at most every 30 s unless ' +
    'grpc.dns_min_time_between_resolutions_ms says otherwise (load-balancer-pick-first.ts, ' +
    'load-balancer-round-robin.ts, resolver-dns.ts)',
  'no client-side health checking: healthCheckConfig is ignored, a NOT_SERVING backend keeps ' +
    'getting RPCs',
  'outlier detection is "outlier_detection" with snake_case fields (child_policy, ' +
    'base_ejection_time, ...), not C core\'s "outlier_detection_experimental"',
  'loadBalancingPolicy is ignored; a loadBalancingConfig with no policy it knows falls back ' +
    'to pick_first (resolving-load-balancer.ts)',
  'no connect timeout to set (no grpc.min_reconnect_backoff_ms) and no limit on keepalive ' +
    'pings without data (C core stops after 2)',
];
const CODE_NAME = grpc.status; // a TypeScript enum: maps numbers back to names too

function nowNs() {
  return process.hrtime.bigint();
}

function fail(code, message) {
  return Object.assign(new Error(message), { code: grpc.status[code], details: message });
}

// The driver.proto beside the checkout (chaos/clients/drivers/node -> proto/), else the
// copy an installed package carries next to the drivers.
function protoPath() {
  const candidates = [
    path.resolve(__dirname, '../../../../proto/driver.proto'),
    path.resolve(__dirname, '../driver.proto'),
  ];
  const found = candidates.find(p => fs.existsSync(p));
  if (!found) {
    throw new Error('driver.proto not found; looked at ' + candidates.join(', '));
  }
  return found;
}

// ------------------------------------------------------------------ channels

function readFile(what, file) {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw fail('INVALID_ARGUMENT', `${what} ${file}: ${err.message}`);
  }
}

function credentials(config) {
  if (!!config.cert_file !== !!config.key_file) {
    throw fail('INVALID_ARGUMENT', 'cert_file and key_file go together');
  }
  return grpc.credentials.createSsl(
    config.ca_file ? readFile('ca_file', config.ca_file) : null,
    config.key_file ? readFile('key_file', config.key_file) : null,
    config.cert_file ? readFile('cert_file', config.cert_file) : null,
  );
}

function channelOptions(config) {
  // Its own subchannel pool: separate clients never share connections (grpc-js shares
  // them process-wide by default, internal-channel.ts).
  const options = { 'grpc.use_local_subchannel_pool': 1 };
  if (config.service_config_json) {
    try {
      JSON.parse(config.service_config_json);
    } catch (err) {
      throw fail('INVALID_ARGUMENT', `service_config_json: ${err.message}`);
    }
    options['grpc.service_config'] = config.service_config_json;
  }
  const settings = config.settings || {};
  if (settings.min_connect_timeout_ms != null) {
    throw fail('INVALID_ARGUMENT', `settings.min_connect_timeout_ms: grpc-js ${GRPC_JS_VERSION} has no connect timeout to set`);
  }
  for (const [field, option] of Object.entries(OPTION_OF)) {
    const value = settings[field];
    if (value == null) continue; // unset: grpc-js's default
    // grpc-js compares the boolean ones with === 1 / === 0: numbers, never true/false;
    // the int64 ones arrive as decimal strings.
    options[option] = Number(value);
  }
  for (const [name, text] of Object.entries(config.options || {})) {
    if (!ACCEPTED.has(name)) {
      throw fail('INVALID_ARGUMENT', `option ${name}: not an option grpc-js ${GRPC_JS_VERSION} takes`);
    }
    let value;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw fail('INVALID_ARGUMENT', `option ${name}: ${JSON.stringify(text)} is not JSON`);
    }
    if (typeof value === 'boolean') value = Number(value);
    if (typeof value !== 'number' && typeof value !== 'string') {
      throw fail('INVALID_ARGUMENT', `option ${name}: ${text} is not a number or a string`);
    }
    options[name] = value;
  }
  return options;
}

function openChannel(config) {
  if (/^dns:\/\/[^/]/.test(config.target) && !ALTERNATIVE_RESOLVER) {
    throw fail('INVALID_ARGUMENT', `target ${config.target}: grpc-js ignores the DNS server in it unless GRPC_NODE_USE_ALTERNATIVE_RESOLVER=true`);
  }
  const options = channelOptions(config);
  const creds = credentials(config);
  try {
    // Throws on a service config grpc-js refuses (resolving-load-balancer.ts validates it).
    return new grpc.Client(config.target, creds, options);
  } catch (err) {
    throw fail('INVALID_ARGUMENT', `target ${config.target} / service_config_json: ${err.message}`);
  }
}

// ------------------------------------------------------------------ one RPC

const identity = buffer => buffer;

function firstValue(metadata, key) {
  const values = metadata ? metadata.get(key) : [];
  if (!values.length) return '';
  return Buffer.isBuffer(values[0]) ? values[0].toString() : values[0];
}

// One unary RPC of raw bytes, started now (`start`: the clock read just before); resolves
// (never rejects) with its RpcRecord.
function callOnce(client, method, request, deadlineMs, key, index, start = nowNs()) {
  return new Promise(resolve => {
    const options = deadlineMs > 0 ? { deadline: Date.now() + deadlineMs } : {};
    let headersNs = 0n;
    let backend = '';
    let result = null;
    const call = client.makeUnaryRequest(
      method, identity, identity, request, new grpc.Metadata(), options,
      (err, response) => { result = { err, response }; },
    );
    call.on('metadata', metadata => {
      headersNs = nowNs();
      if (key) backend = firstValue(metadata, key);
    });
    // Emitted right after the callback (client.ts), with the trailers.
    call.on('status', status => {
      const end = nowNs();
      if (key && !backend) backend = firstValue(status.metadata, key);
      const err = result && result.err;
      resolve({
        start_ns: start, // int64s as BigInt: protobufjs's Long takes them exactly
        end_ns: end,
        code: CODE_NAME[err ? err.code : status.code] || 'UNKNOWN',
        message: err ? err.details || '' : '',
        backend,
        headers_ns: headersNs,
        response: !err && result ? result.response : Buffer.alloc(0),
        request_index: index,
        attempts: 0,
        seq: 0,
      });
    });
  });
}

// One request to grpc-js's channelz handlers, answered at once (they are synchronous).
const CHANNELZ = grpc.getChannelzHandlers();
function channelz(method, request) {
  let answer = null;
  CHANNELZ[method]({ request }, (err, reply) => { answer = { err, reply }; });
  if (!answer || answer.err) {
    throw fail('INTERNAL', `channelz ${method}: ${answer ? answer.err.details : 'no answer'}`);
  }
  return answer.reply;
}

// ------------------------------------------------------------------ load

// A promise that resolves after `ms`, or at once when `run` is stopped (or, for a wait
// through an idle gap, when its gaps are replaced).
function pause(run, ms, idle = false) {
  return new Promise(resolve => {
    const timer = setTimeout(done, ms);
    run.wakers.add(done);
    if (idle) run.idleWakers.add(done);
    function done() {
      clearTimeout(timer);
      run.wakers.delete(done);
      run.idleWakers.delete(done);
      resolve();
    }
  });
}

function gaps(idle) {
  return idle.map(gap => ({ start: BigInt(gap.start_ns), end: BigInt(gap.end_ns) }));
}

function idleUntil(spec, at) {
  for (const gap of spec.idle) {
    if (gap.start <= at && at < gap.end) return gap.end;
  }
  return 0n;
}

class LoadRun {
  constructor(spec, channelId, client) {
    this.spec = spec;
    this.channelId = channelId;
    this.client = client;
    this.stopped = false;
    this.wakers = new Set(); // pauses to cut short on stop
    this.idleWakers = new Set(); // waits through an idle gap, cut short by setIdle
    this.done = false; // StopLoad has seen every RPC end
    this.records = []; // ended, not yet sent
    this.inFlight = new Map(); // token -> start (bigint ns) of each RPC not yet in records
    this.reader = null; // wakes the Records stream
    this.flushTimer = null;
    this.completed = 0;
    this.skipped = 0;
    this.seq = 0;
    this.started = 0; // RPCs launched, for request_index
    this.finished = this.run();
    this.finished.catch(() => {}); // a failure is StopLoad's to report, not a crash now
  }

  async one() {
    const spec = this.spec;
    const token = this.started++;
    const index = token % spec.requests.length;
    const start = nowNs();
    this.inFlight.set(token, start);
    const record = await callOnce(
      this.client, spec.method, spec.requests[index], spec.deadline_ms, spec.identity_key, index,
      start);
    // Into records and out of inFlight in one step (one thread): a batch never misses it.
    record.seq = ++this.seq;
    this.completed += 1;
    this.records.push(record);
    this.inFlight.delete(token);
    this.flushSoon();
    return record.code === 'OK';
  }

  // The next RecordBatch: up to BATCH_MAX records, stamped now, with the start of the oldest
  // RPC whose record is not in it or an earlier batch (in flight, or left for the next
  // batch); 0 when there is none.
  takeBatch() {
    const records = this.records.splice(0, BATCH_MAX);
    let oldest = 0n;
    for (const start of this.inFlight.values()) {
      if (oldest === 0n || start < oldest) oldest = start;
    }
    for (const record of this.records) {
      if (oldest === 0n || record.start_ns < oldest) oldest = record.start_ns;
    }
    return { records, sent_ns: nowNs(), in_flight_since_ns: oldest };
  }

  async run() {
    const spec = this.spec;
    if (spec.rate > 0) return this.openLoop();
    const pauseMs = spec.failure_pause_us / 1000;
    const worker = async () => {
      while (!this.stopped) {
        const idleEnd = idleUntil(spec, nowNs());
        if (idleEnd) {
          await pause(this, Number(idleEnd - nowNs()) / 1e6, true);
        } else if (!(await this.one()) && pauseMs > 0 && !this.stopped) {
          await pause(this, pauseMs);
        }
      }
    };
    await Promise.all(Array.from({ length: spec.concurrency }, worker));
  }

  async openLoop() {
    const spec = this.spec;
    const interval = BigInt(Math.max(1, Math.round(1e9 / spec.rate)));
    const limit = spec.max_in_flight || 1024;
    const inFlight = new Set();
    let next = nowNs();
    while (!this.stopped) {
      const idleEnd = idleUntil(spec, nowNs());
      if (idleEnd) {
        await pause(this, Number(idleEnd - nowNs()) / 1e6, true);
        next = nowNs(); // nothing launched in the gap, and no burst to catch up after it
        continue;
      }
      // Every launch now due (timers fire late, at most 1 ms apart).
      for (const now = nowNs(); next <= now; next += interval) {
        if (inFlight.size >= limit) {
          this.skipped += 1;
          continue;
        }
        const rpc = this.one().finally(() => inFlight.delete(rpc));
        inFlight.add(rpc);
      }
      await pause(this, Number(next - nowNs()) / 1e6);
    }
    await Promise.all(inFlight);
  }

  setIdle(idle) {
    this.spec.idle = gaps(idle); // one swap: each check sees the old gaps or the new
    for (const wake of [...this.idleWakers]) wake(); // a wait through a gap re-checks
  }

  async stop() {
    this.stopped = true;
    for (const wake of [...this.wakers]) wake();
    await this.finished;
    this.done = true;
    this.flush();
  }

  flushSoon() {
    if (this.records.length >= BATCH_MAX) {
      this.flush();
    } else if (this.flushTimer === null) {
      this.flushTimer = setTimeout(() => this.flush(), FLUSH_MS);
    }
  }

  flush() {
    clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (this.reader) this.reader();
  }
}

// ------------------------------------------------------------------ the service

class Driver {
  constructor() {
    this.channels = new Map(); // id (decimal string) -> grpc.Client
    this.loads = new Map(); // id -> LoadRun
    this.nextId = 1;
  }

  newId() {
    return String(this.nextId++);
  }

  channel(id) {
    const client = this.channels.get(String(id));
    if (!client) throw fail('NOT_FOUND', `no channel ${id}`);
    return client;
  }

  load(id) {
    const run = this.loads.get(String(id));
    if (!run) throw fail('NOT_FOUND', `no load ${id}`);
    return run;
  }

  Describe(request) {
    if (request.protocol !== PROTOCOL) {
      throw fail('FAILED_PRECONDITION', `this driver speaks protocol ${PROTOCOL}, not ${request.protocol}`);
    }
    return {
      protocol: PROTOCOL,
      implementation: 'grpc-js',
      version: GRPC_JS_VERSION,
      language: 'node',
      settings: Object.keys(OPTION_OF).sort(),
      options: OPTIONS,
      lb_policies: LB_POLICIES,
      retries: true, // retrying-call.ts; retryThrottling is honoured too
      health_check: false,
      ignored_fields: IGNORED_FIELDS,
      now_ns: nowNs(),
      notes: NOTES,
      subchannels: true,
      minimums: {}, // grpc-js raises no setting to a floor (subchannel.ts only caps keepalive)
    };
  }

  OpenChannel(config) {
    const client = openChannel(config);
    const id = this.newId();
    this.channels.set(id, client);
    return { id };
  }

  // Per-subchannel counters from grpc-js's own channelz (its public handlers, called in
  // process): attempts per backend, retries included (subchannel.ts counts each call it
  // creates). Two subchannels for one address (after a re-resolution) are summed.
  Subchannels(ref) {
    const client = this.channel(ref.id);
    const now = nowNs();
    const channel = channelz('GetChannel', { channel_id: String(client.getChannel().getChannelzRef().id) }).channel;
    const byAddress = new Map();
    for (const { subchannel_id: id } of channel.subchannel_ref) {
      const { data, socket_ref: sockets } = channelz('GetSubchannel', { subchannel_id: String(id) }).subchannel;
      const sample = byAddress.get(data.target) || {
        address: data.target, calls_started: 0, calls_succeeded: 0, calls_failed: 0, state: '', sockets: [],
      };
      sample.calls_started += Number(data.calls_started);
      sample.calls_succeeded += Number(data.calls_succeeded);
      sample.calls_failed += Number(data.calls_failed);
      sample.state = sample.state || data.state.state;
      sample.sockets.push(...sockets.map(socket => String(socket.socket_id)));
      byAddress.set(data.target, sample);
    }
    return { now_ns: now, subchannels: [...byAddress.values()] };
  }

  async CloseChannel(ref) {
    const id = String(ref.id);
    const client = this.channels.get(id);
    this.channels.delete(id);
    const runs = [...this.loads.values()].filter(run => run.channelId === id);
    await Promise.all(runs.map(run => run.stop()));
    if (client) client.close();
    return {};
  }

  Call(request) {
    const client = this.channel(request.channel);
    return callOnce(client, request.method, request.request, Number(request.deadline_ms), request.identity_key, 0);
  }

  StartLoad(spec) {
    const client = this.channel(spec.channel);
    if (!spec.requests.length) throw fail('INVALID_ARGUMENT', 'a load needs at least one request');
    if (!(spec.rate > 0) && spec.concurrency < 1) {
      throw fail('INVALID_ARGUMENT', 'concurrency must be at least 1');
    }
    const plain = {
      method: spec.method,
      requests: spec.requests,
      deadline_ms: Number(spec.deadline_ms),
      identity_key: spec.identity_key,
      concurrency: spec.concurrency,
      rate: spec.rate,
      max_in_flight: spec.max_in_flight,
      failure_pause_us: Number(spec.failure_pause_us),
      idle: gaps(spec.idle),
    };
    const id = this.newId();
    this.loads.set(id, new LoadRun(plain, String(spec.channel), client));
    return { id };
  }

  SetIdle(request) {
    this.load(request.load).setIdle(request.idle);
    return { id: request.load };
  }

  async StopLoad(ref) {
    const run = this.load(ref.id);
    await run.stop();
    return { completed: run.completed, skipped: run.skipped };
  }

  // A server stream: batches of ended records (and at least one every HEARTBEAT_MS, empty if
  // nothing ended) until the load is done and all are sent.
  async Records(call) {
    const run = this.load(call.request.id);
    let cancelled = false;
    let wake = null; // ends the current wait
    call.on('cancelled', () => { cancelled = true; if (wake) wake(); });
    while (!cancelled) {
      const finished = run.done;
      const writable = call.write(run.takeBatch());
      if (finished && run.records.length === 0) break;
      if (!writable) {
        // Backpressure: the reader is slow; go on once the stream drains (or is cancelled).
        await new Promise(resolve => { wake = resolve; call.once('drain', resolve); });
      } else if (run.records.length < BATCH_MAX) {
        // New records (after FLUSH_MS), the load's end or the heartbeat, whichever is first.
        let timer;
        await new Promise(resolve => {
          wake = run.reader = resolve;
          timer = setTimeout(resolve, HEARTBEAT_MS);
        });
        clearTimeout(timer);
        run.reader = null;
      }
      wake = null;
    }
    if (!cancelled) call.end();
  }
}

// Wraps the driver's methods as grpc-js handlers: a thrown (or rejected) error becomes the
// call's status, anything else an INTERNAL one naming it.
function handlers(driver) {
  const toStatus = err => (err && typeof err.code === 'number' && err.details !== undefined
    ? err : { code: grpc.status.INTERNAL, details: String(err && err.stack || err) });
  const unary = name => (call, callback) => {
    Promise.resolve().then(() => driver[name](call.request))
      .then(reply => callback(null, reply), err => callback(toStatus(err)));
  };
  return {
    Describe: unary('Describe'),
    Subchannels: unary('Subchannels'),
    OpenChannel: unary('OpenChannel'),
    CloseChannel: unary('CloseChannel'),
    Call: unary('Call'),
    StartLoad: unary('StartLoad'),
    SetIdle: unary('SetIdle'),
    StopLoad: unary('StopLoad'),
    Records: call => {
      // An 'error' event on a server stream ends it with that status (server-call.ts).
      Promise.resolve().then(() => driver.Records(call)).catch(err => call.emit('error', toStatus(err)));
    },
  };
}

function main() {
  const definition = protoLoader.loadSync(protoPath(), {
    keepCase: true, // field names as in the proto: identity_key, max_in_flight, ...
    longs: String, // int64/uint64 read as decimal strings: exact nanoseconds
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const proto = grpc.loadPackageDefinition(definition).grpc_chaos.driver.v1;
  const server = new grpc.Server();
  server.addService(proto.ClientDriver.service, handlers(new Driver()));

  let exiting = false;
  const exit = () => {
    if (exiting) return;
    exiting = true;
    server.forceShutdown();
    process.exit(0); // channels and loads die with the process; nothing to flush
  };
  // The parent holds our stdin open: EOF means it has gone.
  process.stdin.on('end', exit);
  process.stdin.on('close', exit);
  process.stdin.on('error', exit);
  process.stdin.resume();
  process.on('SIGTERM', exit);
  process.on('SIGINT', exit);

  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) {
      process.stderr.write(`cannot listen on 127.0.0.1: ${err.message}\n`);
      process.exit(1);
    }
    process.stdout.write(`{"driver": "grpc-chaos", "protocol": ${PROTOCOL}, "port": ${port}}\n`);
  });
}

main();
