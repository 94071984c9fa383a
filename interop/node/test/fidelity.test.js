"use strict";
// Wire fidelity of transport.js against the messages captured from the real
// upstream adapter (testdata/aws-sqs-adapter-0.1.1.json).
//
// Against the emulator (AWS_ENDPOINT_URL), two Socket.IO servers A and B
// with namespaces "/" and "/custom" run on a fresh topic, a spy queue is
// subscribed to that topic with raw delivery, and the scenarios of the
// vector file are replayed in order. Every message the spy receives is
// checked against the vectors of its scenario: body, attribute names and
// DataTypes, uid / requesterUid roles, `data` present exactly when the
// vector has it, its decoding (same structure and keys; values equal except
// uids, request ids, socket ids, handshake headers and times) and the
// msgpack formats used. The provisioning and poll requests of A are
// recorded and checked against upstream's too.

const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");
const { randomBytes } = require("node:crypto");
const { Server } = require("socket.io");
const { io: connect } = require("socket.io-client");
const { decode } = require("@msgpack/msgpack");
const sns = require("@aws-sdk/client-sns");
const sqs = require("@aws-sdk/client-sqs");
const { createAdapter, queuePolicy } = require("../transport");
const { toJSONValue } = require("../wire");
const { msgpackFormats } = require("../msgpack-formats");

const VECTORS = path.join(__dirname, "..", "..", "..", "testdata", "aws-sqs-adapter-0.1.1.json");
const HEARTBEAT_INTERVAL = 400;
const HEARTBEAT_TIMEOUT = 5000;
const WAIT_MS = 10000;

const skip =
  process.env.AWS_ENDPOINT_URL || process.env.CI === "true"
    ? false
    : "AWS_ENDPOINT_URL is not set: run through scripts/with-emulator.sh";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, cond, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms}ms waiting for ${typeof what === "function" ? what() : what}`);
    }
    await sleep(20);
  }
}

// recorded wraps an AWS client so that every command it sends is listed.
function recorded(client) {
  const calls = [];
  const send = client.send.bind(client);
  client.send = (cmd, opts) => {
    calls.push({ name: cmd.constructor.name.replace(/Command$/, ""), input: cmd.input });
    return send(cmd, opts);
  };
  return { client, calls };
}

function clients() {
  return {
    sns: new sns.SNSClient({}),
    // emulators answer queue URLs with a host of their own
    sqs: new sqs.SQSClient({ useQueueUrlAsEndpoint: false }),
  };
}

// ---- structural comparison --------------------------------------------

// Paths whose values differ from run to run; only their kind is compared.
const VOLATILE = [
  /(^|\.)requestId$/,
  /^sockets\[\d+\]\.id$/,
  /^sockets\[\d+\]\.rooms\[0\]$/, // a socket's own room is its id
  /\.handshake\.headers\./,
  /\.handshake\.(time|issued)$/,
];

function kind(v) {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "int" : "float";
  if (typeof v === "object") {
    const keys = Object.keys(v);
    if (keys.length === 1 && (keys[0] === "$bin" || keys[0] === "$date")) return keys[0];
    return "object";
  }
  return typeof v;
}

// differences lists how `actual` differs from `expected` (both in the $bin /
// $date JSON convention), ignoring the values at VOLATILE paths.
function differences(expected, actual, at = "", out = []) {
  const ke = kind(expected);
  const ka = kind(actual);
  if (ke !== ka) {
    out.push(`${at || "(root)"}: ${ka} ${JSON.stringify(actual)}, want ${ke} ${JSON.stringify(expected)}`);
    return out;
  }
  if (ke === "array") {
    if (expected.length !== actual.length) {
      out.push(`${at}: ${actual.length} elements, want ${expected.length}`);
      return out;
    }
    expected.forEach((e, i) => differences(e, actual[i], `${at}[${i}]`, out));
    return out;
  }
  if (ke === "object") {
    const want = Object.keys(expected).sort();
    const got = Object.keys(actual).sort();
    if (JSON.stringify(want) !== JSON.stringify(got)) {
      out.push(`${at || "(root)"}: keys ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
      return out;
    }
    for (const k of want) differences(expected[k], actual[k], at ? `${at}.${k}` : k, out);
    return out;
  }
  if (VOLATILE.some((re) => re.test(at))) return out;
  if (JSON.stringify(expected) !== JSON.stringify(actual)) {
    out.push(`${at || "(root)"}: ${JSON.stringify(actual)}, want ${JSON.stringify(expected)}`);
  }
  return out;
}

// ---- the test ------------------------------------------------------------

test("transport.js matches upstream 0.1.1 on the wire", { skip, timeout: 120000 }, async (t) => {
  assert.ok(
    process.env.AWS_ENDPOINT_URL,
    "AWS_ENDPOINT_URL is not set under CI=true: run through scripts/with-emulator.sh",
  );
  const vectors = JSON.parse(fs.readFileSync(VECTORS, "utf8"));
  const run = randomBytes(4).toString("hex");
  const topicName = `fidelity-${run}`;
  const spyClients = clients();
  const cleanups = [];
  t.after(async () => {
    for (const f of cleanups.reverse()) {
      try {
        await f();
      } catch (err) {
        t.diagnostic(`cleanup: ${err.message}`);
      }
    }
  });

  // The spy: a queue of our own on the topic, raw delivery, like upstream's.
  const topicArn = (await spyClients.sns.send(new sns.CreateTopicCommand({ Name: topicName }))).TopicArn;
  cleanups.push(() => spyClients.sns.send(new sns.DeleteTopicCommand({ TopicArn: topicArn })));
  const spyUrl = (await spyClients.sqs.send(new sqs.CreateQueueCommand({ QueueName: `fidelity-spy-${run}` }))).QueueUrl;
  cleanups.push(() => spyClients.sqs.send(new sqs.DeleteQueueCommand({ QueueUrl: spyUrl })));
  const spyArn = (
    await spyClients.sqs.send(new sqs.GetQueueAttributesCommand({ QueueUrl: spyUrl, AttributeNames: ["QueueArn"] }))
  ).Attributes.QueueArn;
  await spyClients.sqs.send(
    new sqs.SetQueueAttributesCommand({ QueueUrl: spyUrl, Attributes: { Policy: queuePolicy(spyArn, topicArn) } }),
  );
  const spySub = await spyClients.sns.send(
    new sns.SubscribeCommand({ TopicArn: topicArn, Protocol: "sqs", Endpoint: spyArn, Attributes: { RawMessageDelivery: "true" } }),
  );
  cleanups.push(() => spyClients.sns.send(new sns.UnsubscribeCommand({ SubscriptionArn: spySub.SubscriptionArn })));

  let scenario = "init";
  const captured = [];
  let spying = true;
  const spyErrors = [];
  const spyLoop = (async () => {
    while (spying) {
      try {
        await spyOnce();
      } catch (err) {
        spyErrors.push(err.message);
        await sleep(100);
      }
    }
  })();
  async function spyOnce() {
    const outp = await spyClients.sqs.send(
      new sqs.ReceiveMessageCommand({ QueueUrl: spyUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ["All"] }),
    );
    if (!outp.Messages) return;
    for (const m of outp.Messages) captured.push({ scenario, m, checked: false });
    await spyClients.sqs.send(
      new sqs.DeleteMessageBatchCommand({
        QueueUrl: spyUrl,
        Entries: outp.Messages.map((m) => ({ Id: m.MessageId, ReceiptHandle: m.ReceiptHandle })),
      }),
    );
  }
  cleanups.push(async () => {
    spying = false;
    await spyLoop;
  });

  // Servers A and B, as in the capture; A's AWS requests are recorded.
  const recA = { sns: recorded(clients().sns), sqs: recorded(clients().sqs) };
  const opts = { topicName, heartbeatInterval: HEARTBEAT_INTERVAL, heartbeatTimeout: HEARTBEAT_TIMEOUT };
  async function server(snsClient, sqsClient) {
    const httpServer = http.createServer();
    await new Promise((r) => httpServer.listen(0, "127.0.0.1", r));
    const io = new Server(httpServer, { adapter: createAdapter(snsClient, sqsClient, opts) });
    return { io, port: httpServer.address().port };
  }
  const b = clients();
  const A = await server(recA.sns.client, recA.sqs.client);
  const B = await server(b.sns, b.sqs);
  let closed = false;
  cleanups.push(async () => {
    if (!closed) await Promise.allSettled([A.io.close(), B.io.close()]);
  });
  A.io.of("/custom");
  B.io.of("/custom");
  await A.io.of("/").adapter.init();
  await B.io.of("/").adapter.init();

  // uid -> role label as in the vectors' `sender` field, and back.
  const roles = new Map();
  for (const [name, srv] of [["A", A], ["B", B]]) {
    for (const nsp of ["/", "/custom"]) roles.set(srv.io.of(nsp).adapter.uid, `${name} "${nsp}"`);
  }
  const uidOfRole = new Map([...roles].map(([uid, role]) => [role, uid]));
  const vectorRoles = new Map(vectors.map((v) => [v.attributes.uid.StringValue, v.sender]));

  // B's sockets and their server-side state, as in the capture.
  const received = [];
  B.io.on("connection", (socket) => {
    const kindOf = socket.handshake.auth.kind;
    if (kindOf === "main") {
      socket.data = {
        user: "bob", n: 42, neg: -5, f: 1.5, whole: 2, big: 2 ** 40, ok: true, nil: null, undef: undefined,
        bin: Buffer.from("deadbeef", "hex"), date: new Date("2023-11-14T22:13:20.123Z"),
        set: new Set([1, 2]), map: new Map([["a", 1]]), arr: [1, "two", 3.25], nested: { deep: { x: 1 } },
      };
      socket.join("room1");
    } else if (kindOf === "doomed") {
      socket.data = { kind: "doomed" };
      socket.join("doomed");
    } else if (kindOf === "doomed2") {
      socket.join("doomed2");
    }
  });
  B.io.of("/custom").on("connection", (socket) => {
    socket.data = { ns: "custom" };
  });
  B.io.on("ping", (x, cb) => cb({ pong: true, bin: Buffer.from([7, 7]) }));
  B.io.on("hello", (...args) => received.push(["server:hello", args]));

  const url = `http://127.0.0.1:${B.port}`;
  const sockets = [];
  async function client(name, socket) {
    sockets.push(socket);
    for (const ev of ["ev", "roomev", "volev", "cev"]) socket.on(ev, (...args) => received.push([`${name}:${ev}`, args]));
    for (const ev of ["ackev", "ackev2"]) socket.on(ev, (...args) => args.pop()({ ack: name, bin: Buffer.from([1]) }));
    socket.on("disconnect", (reason) => received.push([`${name}:disconnect`, [reason]]));
    await new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", reject);
    });
    return socket;
  }
  cleanups.push(() => sockets.forEach((s) => s.close()));
  const cB = await client("cB", connect(url, { transports: ["websocket"], reconnection: false, query: { foo: "bar", num: "7" }, auth: { token: "tokB", n: 2, kind: "main" } }));
  await client("cB2", connect(url, { forceNew: true, transports: ["websocket"], reconnection: false, auth: { kind: "doomed" } }));
  await client("cB3", connect(url, { forceNew: true, transports: ["websocket"], reconnection: false, auth: { kind: "doomed2" } }));
  // Multiplexed on cB's connection, as in the capture (it connects itself:
  // the Manager's autoConnect; a second connect() would join twice).
  const custom = cB.io.socket("/custom", { auth: { kind: "custom" } });
  await client("custom", custom);

  // ---- checking --------------------------------------------------------

  const matchedTypes = new Set();
  let checkedCount = 0;

  // problems lists how captured message m differs from vector v.
  function problems(v, m) {
    const out = [];
    if (m.Body !== v.body) out.push(`body ${JSON.stringify(m.Body)}, want ${JSON.stringify(v.body)}`);
    const attrs = m.MessageAttributes || {};
    const names = Object.keys(attrs).sort();
    const want = Object.keys(v.attributes).sort();
    if (JSON.stringify(names) !== JSON.stringify(want)) {
      out.push(`attributes ${JSON.stringify(names)}, want ${JSON.stringify(want)}`);
      return out;
    }
    for (const k of want) {
      if (attrs[k].DataType !== v.attributes[k].DataType) {
        out.push(`${k}.DataType ${attrs[k].DataType}, want ${v.attributes[k].DataType}`);
      }
    }
    if (attrs.nsp.StringValue !== v.attributes.nsp.StringValue) out.push(`nsp ${attrs.nsp.StringValue}`);
    if (roles.get(attrs.uid.StringValue) !== v.sender) {
      out.push(`sent by ${roles.get(attrs.uid.StringValue) || attrs.uid.StringValue}, want ${v.sender}`);
    }
    if (v.attributes.requesterUid) {
      const role = vectorRoles.get(v.attributes.requesterUid.StringValue);
      if (attrs.requesterUid.StringValue !== uidOfRole.get(role)) out.push(`requesterUid is not the uid of ${role}`);
    }
    if (v.dataHex !== null) {
      const bytes = attrs.data.BinaryValue;
      out.push(...differences(v.decoded, toJSONValue(decode(bytes))).map((d) => `data.${d}`));
      const formats = msgpackFormats(bytes);
      const wantFormats = [...v.msgpackFormats].sort();
      if (JSON.stringify(formats) !== JSON.stringify(wantFormats)) {
        out.push(`msgpack formats ${JSON.stringify(formats)}, want ${JSON.stringify(wantFormats)}`);
      }
    }
    return out;
  }

  // heartbeatProblems checks a HEARTBEAT: it may come at any time, so it is
  // compared with any heartbeat vector of the same sender.
  function heartbeatProblems(c) {
    const sender = roles.get(c.m.MessageAttributes?.uid?.StringValue);
    const v = vectors.find((x) => x.type === 2 && x.sender === sender);
    if (!v) return [`heartbeat from unknown sender ${c.m.MessageAttributes?.uid?.StringValue}`];
    matchedTypes.add(2);
    return problems(v, c.m).map((p) => `heartbeat from ${sender}: ${p}`);
  }

  // checkScenario waits until the spy holds, for each non-heartbeat vector
  // of scenario `name`, a message of that type from that sender, and checks
  // every message captured during the scenario.
  async function checkScenario(name) {
    const expected = vectors.filter((v) => v.scenario === name && v.type !== 2);
    const senderOf = (c) => roles.get(c.m.MessageAttributes?.uid?.StringValue);
    const mine = () => captured.filter((c) => c.scenario === name);
    const got = () => mine().map((c) => `${JSON.stringify(c.m.Body)} from ${senderOf(c)}`).join(", ");
    await until(
      () => `the messages of scenario ${name}: ${expected.map((v) => `"${v.body}" from ${v.sender}`).join(", ")}; got ${got()}`,
      () =>
        expected.every(
          (v) => mine().filter((c) => c.m.Body === v.body && senderOf(c) === v.sender).length >=
            expected.filter((e) => e.type === v.type && e.sender === v.sender).length,
        ),
    );
    const unmatched = [...expected];
    const failures = [];
    for (const c of mine()) {
      c.checked = true;
      checkedCount++;
      if (c.m.Body === "2") {
        failures.push(...heartbeatProblems(c));
        continue;
      }
      const candidates = unmatched.filter((v) => v.body === c.m.Body && v.sender === senderOf(c));
      if (!candidates.length) {
        failures.push(`unexpected message type ${c.m.Body} from ${senderOf(c)}`);
        continue;
      }
      const scored = candidates.map((v) => ({ v, p: problems(v, c.m) }));
      const best = scored.find((s) => s.p.length === 0) || scored[0];
      unmatched.splice(unmatched.indexOf(best.v), 1);
      matchedTypes.add(best.v.type);
      if (best.p.length) failures.push(`type ${best.v.type} from ${best.v.sender}: ${best.p.join("; ")}`);
    }
    assert.deepEqual(failures, [], `scenario ${name}`);
  }

  let clusterUp = false;
  async function scenarioStep(name, action) {
    // Without a cluster every scenario would only wait for its timeout.
    await t.test(name, { skip: !clusterUp && "init failed" }, async () => {
      scenario = name;
      await action();
      await checkScenario(name);
    });
  }

  // ---- the scenarios, in the vector file's order --------------------------

  await t.test("init", async () => {
    for (const io of [A.io, B.io]) {
      for (const nsp of ["/", "/custom"]) {
        await until(`serverCount 2 on ${nsp}`, async () => (await io.of(nsp).adapter.serverCount()) === 2);
      }
    }
    await checkScenario("init");
    clusterUp = true;
  });

  await t.test("provisioning requests", () => {
    const names = [...recA.sns.calls, ...recA.sqs.calls].map((c) => c.name);
    for (const n of ["CreateTopic", "CreateQueue", "GetQueueAttributes", "SetQueueAttributes", "Subscribe"]) {
      assert.ok(names.includes(n), `${n} was not sent`);
    }
    const call = (client, name) => client.calls.find((c) => c.name === name).input;
    assert.deepEqual(call(recA.sns, "CreateTopic"), { Name: topicName, Tags: undefined });
    const cq = call(recA.sqs, "CreateQueue");
    assert.match(cq.QueueName, /^socket-io-[0-9a-f]{16}$/);
    assert.deepEqual(call(recA.sqs, "GetQueueAttributes").AttributeNames, ["QueueArn"]);
    const policy = call(recA.sqs, "SetQueueAttributes").Attributes.Policy;
    const queueArn = call(recA.sns, "Subscribe").Endpoint;
    assert.equal(
      policy,
      `{"Version":"2012-10-17","Id":"__default_policy_ID","Statement":[{"Sid":"__owner_statement","Effect":"Allow","Principal":"*","Action":"SQS:SendMessage","Resource":"${queueArn}","Condition":{"ArnEquals":{"aws:SourceArn":"${topicArn}"}}}]}`,
    );
    assert.deepEqual(call(recA.sns, "Subscribe"), {
      TopicArn: topicArn, Protocol: "sqs", Endpoint: queueArn, Attributes: { RawMessageDelivery: "true" },
    });
    const recv = call(recA.sqs, "ReceiveMessage");
    assert.deepEqual(
      { ...recv, QueueUrl: undefined },
      { QueueUrl: undefined, MaxNumberOfMessages: 10, WaitTimeSeconds: 5, MessageAttributeNames: ["All"] },
    );
    const del = recA.sqs.calls.find((c) => c.name === "DeleteMessageBatch");
    assert.ok(del, "no DeleteMessageBatch yet");
    for (const e of del.input.Entries) assert.ok(e.Id && e.ReceiptHandle);
    const pub = recA.sns.calls.find((c) => c.name === "Publish").input;
    assert.deepEqual(Object.keys(pub).sort(), ["Message", "MessageAttributes", "TopicArn"]);
    assert.equal(pub.TopicArn, topicArn);
  });

  const bin = (...bytes) => Buffer.from(bytes);
  await scenarioStep("broadcast-plain", async () => {
    A.io.emit("ev", 1, "two", bin(1, 2, 3), { nested: true });
    await until("cB to get ev", () => received.some(([k]) => k === "cB:ev"));
  });
  await scenarioStep("broadcast-room-except", () => A.io.to("room1").except("room2").emit("roomev", "hello", 3.5));
  await scenarioStep("broadcast-flags-volatile-compress", () => A.io.volatile.compress(false).emit("volev", -1));
  await scenarioStep("broadcast-with-ack", async () => {
    const responses = await A.io.timeout(1000).emitWithAck("ackev", "question");
    assert.deepEqual(responses.map((r) => r.ack).sort(), ["cB", "cB2", "cB3"]);
  });
  await scenarioStep("broadcast-with-ack-room", async () => {
    const responses = await A.io.to("room1").timeout(1500).emitWithAck("ackev2");
    assert.deepEqual(responses.map((r) => r.ack), ["cB"]);
  });
  await scenarioStep("sockets-join", () => {
    A.io.in("room1").socketsJoin(["room3", "room4"]);
    A.io.socketsJoin("room5");
  });
  await scenarioStep("sockets-leave", () => A.io.in("room3").except("room2").socketsLeave("room4"));
  await scenarioStep("fetch-sockets", async () => {
    const found = await A.io.fetchSockets();
    assert.equal(found.length, 3);
  });
  await scenarioStep("fetch-sockets-room-timeout", async () => {
    const found = await A.io.in("room1").timeout(2500).fetchSockets();
    assert.deepEqual(found.map((s) => s.id), [cB.id]);
  });
  await scenarioStep("server-side-emit", async () => {
    A.io.serverSideEmit("hello", "world", 1, bin(9, 8, 7), { o: [1, 2] });
    await until("B to get hello", () => received.some(([k]) => k === "server:hello"));
  });
  await scenarioStep("server-side-emit-ack", async () => {
    const responses = await A.io.serverSideEmitWithAck("ping", "x");
    assert.equal(responses.length, 1);
    assert.equal(responses[0].pong, true);
  });
  await scenarioStep("custom-namespace", async () => {
    A.io.of("/custom").emit("cev", "custom-payload");
    const found = await A.io.of("/custom").fetchSockets();
    assert.deepEqual(found.map((s) => s.id), [custom.id]);
  });
  await scenarioStep("disconnect-sockets-false", async () => {
    A.io.in("doomed").disconnectSockets(false);
    await until("cB2 to be disconnected", () => received.some(([k]) => k === "cB2:disconnect"));
  });
  await scenarioStep("disconnect-sockets-true", async () => {
    A.io.in("doomed2").disconnectSockets(true);
    await until("cB3 to be disconnected", () => received.some(([k]) => k === "cB3:disconnect"));
  });
  await scenarioStep("idle-heartbeats", async () => {
    const heard = () =>
      new Set(captured.filter((c) => c.scenario === "idle-heartbeats" && c.m.Body === "2").map((c) => c.m.MessageAttributes.uid.StringValue));
    await until("a heartbeat from each adapter", () => heard().size === 4);
  });
  await t.test("close", { skip: !clusterUp && "init failed" }, async () => {
    scenario = "close";
    const queues = [recA.sqs.calls.find((c) => c.name === "CreateQueue").input.QueueName];
    const started = Date.now();
    await Promise.all([A.io.close(), B.io.close()]);
    closed = true;
    t.diagnostic(`closing A and B took ${Date.now() - started}ms`);
    await checkScenario("close");
    // Upstream deletes its queue and subscription once the last namespace is closed.
    const subs = await spyClients.sns.send(new sns.ListSubscriptionsByTopicCommand({ TopicArn: topicArn }));
    assert.deepEqual(subs.Subscriptions.map((s) => s.Endpoint), [spyArn]);
    await assert.rejects(spyClients.sqs.send(new sqs.GetQueueUrlCommand({ QueueName: queues[0] })));
    const names = recA.sqs.calls.map((c) => c.name);
    assert.ok(names.includes("DeleteQueue"));
    assert.ok(recA.sns.calls.some((c) => c.name === "Unsubscribe"));
  });

  await t.test("every message type 1..13 was produced and checked", () => {
    assert.deepEqual([...matchedTypes].sort((x, y) => x - y), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    // What came in after a scenario was checked: heartbeats only.
    const late = captured.filter((c) => !c.checked);
    const failures = late.flatMap((c) =>
      c.m.Body === "2" ? heartbeatProblems(c) : [`${c.scenario}: unexpected late message type ${c.m.Body}`],
    );
    assert.deepEqual(failures, []);
    assert.deepEqual(spyErrors, [], "errors while polling the spy queue");
    checkedCount += late.length;
    t.diagnostic(`${checkedCount} captured messages checked`);
  });
});
