"use strict";
// A Node Socket.IO server on the SNS/SQS transport (transport.js), driven by
// JSON lines on stdin, for the Go mixed-cluster tests. The protocol is
// described in README.md. stdout carries only protocol lines; diagnostics go
// to stderr.

const http = require("node:http");
const readline = require("node:readline");
const { Server } = require("socket.io");
const { io: connect } = require("socket.io-client");
const { SNSClient } = require("@aws-sdk/client-sns");
const { SQSClient } = require("@aws-sdk/client-sqs");
const { performance } = require("node:perf_hooks");
const { createAdapter, PubSubAdapter } = require("./transport");
const { toJSONValue, fromJSONValue } = require("./wire");

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function log(...args) {
  process.stderr.write(`[peer ${process.pid}] ${args.join(" ")}\n`);
}

function intEnv(name) {
  const v = process.env[name];
  if (v === undefined || v === "") {
    return undefined;
  }
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) {
    throw new Error(`${name} must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return n;
}

const adapterOpts = {
  topicName: process.env.PEER_TOPIC || undefined,
  queuePrefix: process.env.PEER_QUEUE_PREFIX || undefined,
  heartbeatInterval: intEnv("PEER_HEARTBEAT_INTERVAL_MS"),
  heartbeatTimeout: intEnv("PEER_HEARTBEAT_TIMEOUT_MS"),
};
for (const k of Object.keys(adapterOpts)) {
  if (adapterOpts[k] === undefined) {
    delete adapterOpts[k];
  }
}

const sns = new SNSClient({});
// Emulators answer queue URLs with a host of their own (fauxqs:
// sqs.<region>.localhost); send every request to the configured endpoint.
const sqs = new SQSClient({ useQueueUrlAsEndpoint: false });

// PEER_AWS_STATS=1 (for the benchmark): count every AWS request by action in
// the SDK clients, the messages ReceiveMessage returned, and the messages the
// transport received only to drop them. Off by default: the peer is then
// exactly what it was.
const awsStats = process.env.PEER_AWS_STATS === "1" ? newAWSStats() : null;
if (awsStats) {
  countRequests(sns, awsStats);
  countRequests(sqs, awsStats);
  countDrops(awsStats);
}

function newAWSStats() {
  return { requests: {}, failed: {}, messagesReceived: 0, ownDropped: 0, otherRequesterDropped: 0 };
}

// countRequests adds a middleware inside the retry middleware (finalizeRequest
// step, low priority), so that every HTTP attempt is counted, as AWS bills it.
function countRequests(client, stats) {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const action = String(context.commandName || "unknown").replace(/Command$/, "");
      stats.requests[action] = (stats.requests[action] || 0) + 1;
      let res;
      try {
        res = await next(args);
      } catch (err) {
        stats.failed[action] = (stats.failed[action] || 0) + 1;
        throw err;
      }
      if (action === "ReceiveMessage" && res.output && Array.isArray(res.output.Messages)) {
        stats.messagesReceived += res.output.Messages.length;
      }
      return res;
    },
    { step: "finalizeRequest", priority: "low", name: "peerAWSStats" },
  );
}

// countDrops wraps the transport's onRawMessage to count what it drops: its
// own messages (echoed by the topic) and responses meant for another server.
// The checks mirror transport.js's; the original then runs unchanged.
function countDrops(stats) {
  const onRawMessage = PubSubAdapter.prototype.onRawMessage;
  PubSubAdapter.prototype.onRawMessage = function (raw) {
    const attrs = raw.MessageAttributes;
    if (attrs !== undefined && raw.Body !== undefined) {
      const uid = attrs.uid && attrs.uid.StringValue;
      const requesterUid = attrs.requesterUid && attrs.requesterUid.StringValue;
      if (uid === this.uid) {
        stats.ownDropped++;
      } else if (requesterUid && requesterUid !== this.uid) {
        stats.otherRequesterDropped++;
      }
    }
    return onRawMessage.call(this, raw);
  };
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
const factory = createAdapter(sns, sqs, adapterOpts);

const httpServer = http.createServer();
const io = new Server(httpServer, { adapter: factory });
const clients = new Map(); // name -> client Socket
let port = 0;
let closing = null;

function nspOf(name) {
  const key = name === undefined ? "/" : name;
  const nsp = io._nsps.get(key);
  if (!nsp) {
    throw new Error(`unknown namespace ${JSON.stringify(key)}: create it with "of" first`);
  }
  return nsp;
}

function clientOf(name) {
  const c = clients.get(name);
  if (!c) {
    throw new Error(`unknown client ${JSON.stringify(name)}`);
  }
  return c;
}

// serverSocketOf returns the server-side socket of client `name` (same id).
function serverSocketOf(name) {
  const c = clientOf(name);
  const s = nspOf(c.nsp).sockets.get(c.id);
  if (!s) {
    throw new Error(`client ${JSON.stringify(name)} has no server-side socket (disconnected?)`);
  }
  return s;
}

function asArray(v) {
  if (v === undefined || v === null) {
    return [];
  }
  return Array.isArray(v) ? v : [v];
}

// operator applies the selection fields shared by broadcast commands.
function operator(c) {
  let op = nspOf(c.nsp);
  const rooms = asArray(c.rooms);
  const except = asArray(c.except);
  if (rooms.length) op = op.to(rooms);
  if (except.length) op = op.except(except);
  if (c.local) op = op.local;
  if (c.volatile) op = op.volatile;
  if (c.compress !== undefined) op = op.compress(c.compress);
  if (c.timeoutMs !== undefined) op = op.timeout(c.timeoutMs);
  return op;
}

function args(c) {
  return fromJSONValue(asArray(c.args));
}

// ackWith answers an acknowledgement callback as told by the command fields
// `ack` (one value) or `ackArgs` (a list); with neither it never answers.
function ackWith(c, cb) {
  if (Array.isArray(c.ackArgs)) {
    cb(...fromJSONValue(c.ackArgs));
  } else if ("ack" in c) {
    cb(fromJSONValue(c.ack));
  }
}

// collectAcks is the (err, responses) callback of a cluster-wide ack that
// resolves a command with {err, responses}.
function collectAcks(resolve) {
  return (err, responses) =>
    resolve({ err: err ? err.message : null, responses: toJSONValue(responses) });
}

function splitAck(list) {
  const a = [...list];
  const cb = typeof a[a.length - 1] === "function" ? a.pop() : null;
  return [a, cb];
}

// reportAndAck returns an event listener that prints `fields` plus the
// received args as an event line, then answers its ack callback (if any) as
// the command says.
function reportAndAck(c, fields) {
  return (...all) => {
    const [a, cb] = splitAck(all);
    out({ ...fields, args: toJSONValue(a), withAck: !!cb });
    if (cb) ackWith(c, cb);
  };
}

function describeSocket(s) {
  return {
    id: s.id,
    handshake: toJSONValue(s.handshake),
    rooms: [...s.rooms],
    data: toJSONValue(s.data),
    local: !s.constructor || s.constructor.name !== "RemoteSocket",
  };
}

function withTimer(ms, promise, onTimeout) {
  if (ms === undefined) {
    return promise;
  }
  let timer;
  const t = new Promise((resolve) => {
    timer = setTimeout(() => resolve(onTimeout()), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

function uids() {
  const m = {};
  for (const [name, nsp] of io._nsps) {
    m[name] = nsp.adapter.uid;
  }
  return m;
}

const commands = {
  ping: () => "pong",

  of: (c) => {
    if (typeof c.nsp !== "string" || !c.nsp.startsWith("/")) {
      throw new Error(`"nsp" must be a namespace name starting with "/"`);
    }
    const nsp = io.of(c.nsp);
    return { nsp: nsp.name, uid: nsp.adapter.uid };
  },

  uids: () => uids(),

  connectClient: (c) =>
    new Promise((resolve, reject) => {
      if (typeof c.name !== "string" || c.name === "") {
        throw new Error(`"name" is required`);
      }
      if (clients.has(c.name)) {
        throw new Error(`client ${JSON.stringify(c.name)} already exists`);
      }
      const nspName = c.nsp || "/";
      nspOf(nspName);
      const auth = c.auth === undefined ? undefined : fromJSONValue(c.auth);
      let socket;
      if (c.sameConnectionAs !== undefined) {
        // multiplexed on another client's connection, like io(url) twice;
        // it connects by itself (a second connect() would join twice)
        socket = clientOf(c.sameConnectionAs).io.socket(nspName, auth ? { auth } : {});
      } else {
        socket = connect(`http://127.0.0.1:${port}${nspName}`, {
          forceNew: true,
          transports: c.transports || ["websocket"],
          reconnection: c.reconnection === true,
          timeout: c.timeoutMs || 10000,
          query: c.query,
          auth,
        });
      }
      const onError = (err) => {
        socket.off("connect", onConnect);
        socket.close();
        reject(new Error(`connect_error: ${err.message}`));
      };
      const onConnect = () => {
        socket.off("connect_error", onError);
        socket.nsp = nspName;
        clients.set(c.name, socket);
        resolve({ id: socket.id });
      };
      socket.once("connect", onConnect);
      socket.once("connect_error", onError);
    }),

  clientOn: (c) => {
    const socket = clientOf(c.name);
    socket.on(c.ev, reportAndAck(c, { event: "client", name: c.name, ev: c.ev }));
    return null;
  },

  clientDisconnectReport: (c) => {
    const socket = clientOf(c.name);
    socket.on("disconnect", (reason) => {
      out({ event: "clientDisconnect", name: c.name, reason });
    });
    return null;
  },

  clientEmit: (c) => {
    const socket = clientOf(c.name);
    const a = args(c);
    if (!c.withAck) {
      socket.emit(c.event, ...a);
      return null;
    }
    const s = c.timeoutMs !== undefined ? socket.timeout(c.timeoutMs) : socket;
    return s.emitWithAck(c.event, ...a).then(
      (response) => ({ err: null, response: toJSONValue(response) }),
      (err) => ({ err: err.message, response: null }),
    );
  },

  disconnectClient: (c) => {
    clientOf(c.name).disconnect();
    return null;
  },

  socketJoin: (c) => {
    serverSocketOf(c.name).join(asArray(c.rooms));
    return null;
  },

  socketLeave: (c) => {
    const s = serverSocketOf(c.name);
    for (const r of asArray(c.rooms)) s.leave(r);
    return null;
  },

  setData: (c) => {
    serverSocketOf(c.name).data = fromJSONValue(c.data);
    return null;
  },

  socketRooms: (c) => [...serverSocketOf(c.name).rooms],

  emit: (c) => {
    const op = operator(c);
    const a = args(c);
    if (!c.withAck) {
      op.emit(c.event, ...a);
      return null;
    }
    if (c.timeoutMs === undefined) {
      throw new Error(`"withAck" needs "timeoutMs" (without a timeout Socket.IO fails the ack at once)`);
    }
    return new Promise((resolve) => op.emit(c.event, ...a, collectAcks(resolve)));
  },

  socketsJoin: (c) => {
    operator(c).socketsJoin(asArray(c.target));
    return null;
  },

  socketsLeave: (c) => {
    operator(c).socketsLeave(asArray(c.target));
    return null;
  },

  disconnectSockets: (c) => {
    operator(c).disconnectSockets(c.close === true);
    return null;
  },

  fetchSockets: async (c) => (await operator(c).fetchSockets()).map(describeSocket),

  remoteEmitWithAck: async (c) => {
    if (typeof c.socketId !== "string") throw new Error(`"socketId" is required`);
    if (c.timeoutMs === undefined) throw new Error(`"timeoutMs" is required`);
    let sel = nspOf(c.nsp).in(c.socketId);
    if (c.fetchTimeoutMs !== undefined) sel = sel.timeout(c.fetchTimeoutMs);
    const found = (await sel.fetchSockets()).find((s) => s.id === c.socketId);
    if (!found) throw new Error(`no socket with id ${c.socketId}`);
    try {
      const response = await found.timeout(c.timeoutMs).emitWithAck(c.event, ...args(c));
      return { err: null, response: toJSONValue(response), local: describeSocket(found).local };
    } catch (err) {
      return { err: err.message, response: null, local: describeSocket(found).local };
    }
  },

  serverOn: (c) => {
    const nsp = nspOf(c.nsp);
    nsp.on(c.ev, reportAndAck(c, { event: "serverSideEmit", nsp: nsp.name, ev: c.ev }));
    return null;
  },

  serverSideEmit: (c) => {
    const nsp = nspOf(c.nsp);
    const a = args(c);
    if (!c.withAck) {
      nsp.serverSideEmit(c.event, ...a);
      return null;
    }
    // The adapter's own timeout is fixed (5 s in socket.io-adapter 2.5.8);
    // timeoutMs only bounds how long this command waits for it.
    const answered = new Promise((resolve) => nsp.serverSideEmit(c.event, ...a, collectAcks(resolve)));
    return withTimer(c.timeoutMs, answered, () => ({
      err: `peer: no answer within ${c.timeoutMs}ms`,
      responses: null,
      timedOut: true,
    }));
  },

  serverCount: (c) => nspOf(c.nsp).adapter.serverCount(),

  awsStats: () => {
    if (!awsStats) {
      throw new Error("AWS request counting is off: start the peer with PEER_AWS_STATS=1");
    }
    return awsStats;
  },

  emitRate: async (c) => {
    if (!(typeof c.rate === "number" && c.rate > 0)) throw new Error(`"rate" must be a positive number`);
    if (!(Number.isInteger(c.count) && c.count > 0)) throw new Error(`"count" must be a positive integer`);
    const op = operator(c);
    const base = c.payload === undefined ? {} : fromJSONValue(c.payload);
    if (base === null || typeof base !== "object" || Array.isArray(base)) {
      throw new Error(`"payload" must be an object`);
    }
    // Emit number n (from 0) is due at n/rate seconds after the start; the
    // loop catches up after every timer, as the Go benchmark's loop does.
    const start = performance.now();
    let sent = 0;
    let last = start;
    while (sent < c.count) {
      const due = Math.min(c.count, Math.floor(((performance.now() - start) / 1000) * c.rate) + 1);
      while (sent < due) {
        op.emit(c.event, { ...base, seq: sent, ts: performance.timeOrigin + performance.now() });
        sent++;
      }
      last = performance.now();
      if (sent < c.count) {
        await sleep(Math.max(0, start + (sent / c.rate) * 1000 - performance.now()));
      }
    }
    return { sent, elapsedMs: last - start };
  },

  close: async () => {
    await shutdown();
    return null;
  },
};

function shutdown() {
  if (!closing) {
    closing = (async () => {
      await io.close(); // awaits every adapter's close, so the queue cleanup
      for (const s of clients.values()) s.close();
    })();
  }
  return closing;
}

let exiting = false;
async function exitAfterClose(code) {
  if (exiting) return;
  exiting = true;
  try {
    await shutdown();
  } catch (err) {
    log("close failed:", err && err.stack);
    code = 1;
  }
  out({ event: "closed" });
  process.stdout.write("", () => process.exit(code));
}

async function handle(line) {
  let c;
  try {
    c = JSON.parse(line);
  } catch (err) {
    out({ event: "protocolError", error: `bad JSON: ${err.message}`, line });
    return;
  }
  const id = c.id;
  const fn = Object.prototype.hasOwnProperty.call(commands, c.cmd) ? commands[c.cmd] : null;
  if (!fn) {
    out({ id, ok: false, error: `unknown command ${JSON.stringify(c.cmd)}` });
    return;
  }
  try {
    const result = await fn(c);
    out({ id, ok: true, result: result === undefined ? null : result });
  } catch (err) {
    out({ id, ok: false, error: (err && err.message) || String(err) });
  }
  if (c.cmd === "close") {
    exitAfterClose(0);
  }
}

process.on("unhandledRejection", (err) => log("unhandled rejection:", err && err.stack));
process.on("SIGTERM", () => exitAfterClose(0));

async function main() {
  await new Promise((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(0, "127.0.0.1", resolve);
  });
  port = httpServer.address().port;
  for (const name of (process.env.PEER_NAMESPACES || "").split(",")) {
    if (name.trim()) io.of(name.trim());
  }
  // What upstream's README tells users to do; it publishes a second
  // INITIAL_HEARTBEAT for "/" (Socket.IO already called init once).
  await io.of("/").adapter.init();
  const p = await factory.provisioned;
  out({
    event: "ready",
    port,
    pid: process.pid,
    uids: uids(),
    topicArn: p.topicArn,
    queueName: p.queueName,
    queueUrl: p.queueUrl,
    queueArn: p.queueArn,
    subscriptionArn: p.subscriptionArn,
  });
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  rl.on("line", (line) => {
    if (line.trim()) handle(line);
  });
  // The driving process went away: leave cleanly, like a normal shutdown.
  rl.on("close", () => exitAfterClose(0));
}

main().catch((err) => {
  log("startup failed:", err && err.stack);
  out({ event: "fatal", error: (err && err.message) || String(err) });
  process.exitCode = 1;
  process.stdout.write("", () => process.exit(1));
});
