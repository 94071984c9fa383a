// End-to-end test of examples/chat in real headless Chromium (Debian's /usr/bin/chromium, driven
// by playwright-core; no browser download). It builds and starts the chat demo itself (three Go
// nodes on random loopback ports, on a topic of its own) against the SNS/SQS endpoint of
// AWS_ENDPOINT_URL, opens pages on different nodes and checks what users see:
//   - a message sent from a page on node-1 shows on a page on node-2, with the sender's node;
//   - a channel (room) message reaches the channel's members on other nodes and nobody else;
//   - the user list spans the cluster (fetchSockets);
//   - connection state recovery: a node stopped with the demo's command ("stop 1") hands its
//     sessions off; its user's page reconnects to another node, says "recovered", keeps its socket
//     id and channels, and shows every message sent while it was away exactly once;
//   - a node stopped from the page turns "down" in the cluster view of the other nodes' pages,
//     their ServerCount drops, its user is recovered on another node, and the node comes back
//     when started again;
//   - Ctrl-C (SIGINT) closes every node and deletes every queue the demo created.
// On failure every page's screenshot and the demo's log go to test-artifacts/e2e/.
//
//   scripts/e2e-tests.sh            (what `make test` runs: installs Chromium and npm packages,
//                                    starts an emulator)
//   E2E_SCREENSHOTS=always ...      (keep screenshots of passing steps too)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import { chromium } from "playwright-core";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const artifacts = path.join(root, "test-artifacts", "e2e");
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
const endpoint = process.env.AWS_ENDPOINT_URL;
const keepScreenshots = process.env.E2E_SCREENSHOTS === "always";
const TIMEOUT = 20_000; // for anything that crosses the cluster

let demo; // { proc, urls: Map(name -> url), out: string, err: string, exit: Promise }
let browser;
const pages = {}; // label -> Page
const tmp = mkdtempSync(path.join(tmpdir(), "chat-e2e-"));

before(async () => {
  // Never skip: the script that runs this test provides the endpoint (an emulator).
  assert.ok(endpoint, "AWS_ENDPOINT_URL is not set: run scripts/e2e-tests.sh (it starts an emulator)");
  rmSync(artifacts, { recursive: true, force: true });
  const bin = path.join(tmp, "chat");
  execFileSync("go", ["build", "-o", bin, "./examples/chat"], { cwd: root, stdio: "inherit" });
  demo = await startDemo(bin, `chat-e2e-${randomBytes(4).toString("hex")}`);
  const userDataDir = mkdtempSync(path.join(tmp, "profile-"));
  browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1200, height: 760 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  if (demo && demo.proc.exitCode === null) demo.proc.kill("SIGKILL");
  rmSync(tmp, { recursive: true, force: true });
});

// startDemo runs the chat program on random ports and waits for its "ready" line.
function startDemo(bin, topic) {
  const proc = spawn(bin, ["-port", "0", "-topic", topic], { cwd: root, stdio: ["pipe", "pipe", "pipe"] });
  const d = { proc, urls: new Map(), out: "", err: "" };
  d.exit = new Promise((resolve) => proc.on("exit", (code, signal) => resolve({ code, signal })));
  proc.stderr.on("data", (b) => { d.err += b; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo not ready in 60s:\n${d.out}\n${d.err}`)), 60_000);
    proc.on("exit", (code) => reject(new Error(`demo exited with ${code}:\n${d.out}\n${d.err}`)));
    proc.stdout.on("data", (b) => {
      d.out += b;
      for (const m of d.out.matchAll(/^\s+(node-\d+)\s+(http:\/\/\S+)$/gm)) d.urls.set(m[1], m[2]);
      if (/^ready$/m.test(d.out)) {
        clearTimeout(timer);
        resolve(d);
      }
    });
  });
}

// step runs fn; on failure it saves every page's screenshot and the demo's log.
async function step(name, fn) {
  try {
    await fn();
    if (keepScreenshots) await saveArtifacts(name);
  } catch (e) {
    await saveArtifacts(name).catch((err) => console.error("saving artifacts:", err));
    throw e;
  }
}

async function saveArtifacts(name) {
  mkdirSync(artifacts, { recursive: true });
  const slug = name.replace(/[^a-z0-9]+/gi, "-").toLowerCase();
  for (const [label, page] of Object.entries(pages)) {
    if (page.isClosed()) continue;
    const file = path.join(artifacts, `${slug}--${label}.png`);
    await page.screenshot({ path: file, fullPage: true });
    console.error(`screenshot: ${path.relative(root, file)}`);
  }
  writeFileSync(path.join(artifacts, "chat.log"), `${demo?.out ?? ""}\n----- stderr -----\n${demo?.err ?? ""}`);
}

async function openPage(label, node, name) {
  const page = await browser.newPage();
  pages[label] = page;
  page.on("pageerror", (e) => console.error(`[${label}] page error: ${e}`));
  await page.goto(`${demo.urls.get(node)}?name=${encodeURIComponent(name)}`);
  await page.locator("[data-testid=conn].up").waitFor({ timeout: TIMEOUT });
  return page;
}

const row = (page, node, state) => page.locator(`[data-testid=cluster] tr[data-node="${node}"][data-state="${state}"]`);

async function waitServerCount(page, node, count) {
  await page.waitForFunction(([n, c]) =>
    document.querySelector(`[data-testid=cluster] tr[data-node="${n}"] [data-testid=server-count]`)?.textContent === String(c),
  [node, count], { timeout: TIMEOUT });
}

const message = (page, text) => page.locator("[data-testid=messages] [data-testid=message]", { hasText: text });

async function send(page, target, text) {
  await page.bringToFront(); // a background tab gets about one animation frame a second
  await page.selectOption("[data-testid=target]", target);
  await page.fill("[data-testid=message-input]", text);
  await page.click("[data-testid=send-btn]");
  // The input empties once the server acknowledged the message.
  await page.waitForFunction(() => document.querySelector("[data-testid=message-input]").value === "", null, { timeout: TIMEOUT });
}

async function join(page, channel) {
  await page.bringToFront();
  await page.fill("[data-testid=channel-input]", channel);
  await page.click("[data-testid=join-btn]");
  await page.locator(`[data-testid=channels] [data-channel="${channel}"]`).waitFor({ timeout: TIMEOUT });
}

test("a message sent on node-1 shows on node-2 with the sender's node", async () => {
  await step("message across nodes", async () => {
    assert.deepEqual([...demo.urls.keys()], ["node-1", "node-2", "node-3"]);
    const a = await openPage("alice-node-1", "node-1", "alice");
    const b = await openPage("bob-node-2", "node-2", "bob");
    for (const p of [a, b]) {
      for (const n of ["node-1", "node-2", "node-3"]) await row(p, n, "up").waitFor({ timeout: TIMEOUT });
      await waitServerCount(p, "node-1", 3);
    }
    assert.equal(await b.locator("[data-testid=node-name]").textContent(), "node-2");

    await send(a, "", "hello from alice");
    const got = message(b, "hello from alice");
    await got.waitFor({ timeout: TIMEOUT });
    assert.equal(await got.getAttribute("data-node"), "node-1");
    assert.match(await got.innerText(), /alice\s*node-1\s*:\s*hello from alice/);
  });
});

test("a channel message reaches only the channel's members, on any node", async () => {
  await step("room message", async () => {
    const a = pages["alice-node-1"];
    const b = pages["bob-node-2"];
    const c = await openPage("carol-node-3", "node-3", "carol");
    await join(a, "go");
    await join(c, "go");

    // The user list comes from fetchSockets across the cluster.
    for (const [name, node] of [["alice", "node-1"], ["bob", "node-2"], ["carol", "node-3"]]) {
      await b.locator(`[data-testid=users] [data-name="${name}"][data-node="${node}"]`).waitFor({ timeout: TIMEOUT });
    }

    await send(a, "go", "gophers only");
    const got = message(c, "gophers only");
    await got.waitFor({ timeout: TIMEOUT });
    assert.equal(await got.getAttribute("data-channel"), "go");
    assert.equal(await got.getAttribute("data-node"), "node-1");
    await message(a, "gophers only").waitFor({ timeout: TIMEOUT });

    // Bob is not in #go: once a later message to everyone has reached him, the channel
    // message has had its chance to arrive too.
    await send(a, "", "everyone again");
    await message(b, "everyone again").waitFor({ timeout: TIMEOUT });
    await message(c, "everyone again").waitFor({ timeout: TIMEOUT });
    assert.equal(await message(b, "gophers only").count(), 0, "bob (not in #go) received the #go message");
  });
});

// The page's socket, its id and its recovery line (the header's [data-testid=recovery]).
const socketId = (page) => page.evaluate(() => socket.id);
const recovery = (page) => page.locator("[data-testid=recovery]:not([hidden])");

// Requests of the Socket.IO client: blocking them keeps a page away from every node.
const socketIORequests = (url) => url.pathname.startsWith("/socket.io/");

async function nodeStopped(node) {
  await waitFor(() => new RegExp(`msg="chat: node stopped[^\\n]* node=${node}\\b`).test(demo.err), `${node} has closed`);
}

test("stopping a node loses no message for its users: they are recovered on another node", async () => {
  await step("stop node-1 while bob talks", async () => {
    const a = pages["alice-node-1"];
    const b = pages["bob-node-2"];
    const c = pages["carol-node-3"];
    const sid = await socketId(a);
    // Alice's page must stay away until bob's messages have reached every node still up: it
    // cannot reach any node until the route is removed (the test's only hold; all else is awaited).
    await a.route(socketIORequests, (route) => route.abort());
    demo.proc.stdin.write("stop 1\n"); // the demo's stop command: io.Close, sessions handed off
    await a.locator("[data-testid=conn].down").waitFor({ timeout: TIMEOUT });
    await nodeStopped("node-1");
    await row(b, "node-1", "down").waitFor({ timeout: TIMEOUT });

    const away = [1, 2, 3, 4, 5].map((i) => `said while alice was away ${i}`);
    for (const text of away) await send(b, "", text);
    for (const text of away) await message(c, text).waitFor({ timeout: TIMEOUT }); // node-3 has them too
    assert.equal(await a.locator("[data-testid=conn].down").count(), 1, "alice reconnected while blocked");
    assert.equal(await message(a, away[0]).count(), 0);

    await a.unroute(socketIORequests);
    const rec = recovery(a);
    await rec.waitFor({ timeout: TIMEOUT });
    const line = await rec.textContent();
    assert.equal(await rec.getAttribute("data-recovered"), "true", line);
    assert.notEqual(await rec.getAttribute("data-node"), "node-1", line);
    assert.equal(await rec.getAttribute("data-missed"), String(away.length), line);
    assert.match(line, /^connection recovered on node-[23]: 5 missed messages delivered$/);
    await a.locator("[data-testid=conn].up").waitFor({ timeout: TIMEOUT });
    assert.equal(await socketId(a), sid, "the recovered socket has its id back");

    // Alice is back in #go without joining it again (her page joins only when not recovered),
    // and a message after the recovery comes once: a copy of a missed one would come before it.
    await send(c, "go", "alice is still in #go");
    await message(a, "alice is still in #go").waitFor({ timeout: TIMEOUT });
    await send(b, "", "after alice is back");
    await message(a, "after alice is back").waitFor({ timeout: TIMEOUT });
    for (const text of away) assert.equal(await message(a, text).count(), 1, `"${text}" shown once`);
    // The offset the server appends to every broadcast is not shown.
    assert.match(await message(a, "after alice is back").innerText(), /bob\s*node-2\s*:\s*after alice is back$/);
    await b.locator('[data-testid=users] [data-name="alice"]:not([data-node="node-1"])').waitFor({ timeout: TIMEOUT });
  });

  await step("start node-1", async () => {
    const b = pages["bob-node-2"];
    demo.proc.stdin.write("start 1\n");
    await row(b, "node-1", "up").waitFor({ timeout: TIMEOUT });
    await waitServerCount(b, "node-2", 3);
  });
});

test("a stopped node goes down in the cluster view, its user moves, and it comes back", async () => {
  await step("stop node-3", async () => {
    const a = pages["alice-node-1"];
    const b = pages["bob-node-2"];
    const c = pages["carol-node-3"];
    const sid = await socketId(c);
    await row(b, "node-3", "up").waitFor({ timeout: TIMEOUT });
    await b.bringToFront();
    await b.click("[data-testid=cluster] [data-testid=stop-node-3]");

    for (const p of [a, b]) {
      await row(p, "node-3", "down").waitFor({ timeout: TIMEOUT });
      await waitServerCount(p, "node-1", 2);
      await waitServerCount(p, "node-2", 2);
    }
    await b.locator("[data-testid=system-message]", { hasText: "node-3 is down" }).waitFor({ timeout: TIMEOUT });
    // Carol's page reconnects to another node, where her session is recovered.
    const rec = recovery(c);
    await rec.waitFor({ timeout: TIMEOUT });
    assert.equal(await rec.getAttribute("data-recovered"), "true", await rec.textContent());
    assert.notEqual(await rec.getAttribute("data-node"), "node-3");
    assert.equal(await socketId(c), sid);
    await b.locator('[data-testid=users] [data-name="carol"]:not([data-node="node-3"])').waitFor({ timeout: TIMEOUT });
    // The two nodes left still talk.
    await send(b, "", "still here");
    await message(a, "still here").waitFor({ timeout: TIMEOUT });
    await message(c, "still here").waitFor({ timeout: TIMEOUT });
  });

  await step("start node-3", async () => {
    const a = pages["alice-node-1"];
    const b = pages["bob-node-2"];
    const c = pages["carol-node-3"];
    await b.bringToFront();
    await b.click("[data-testid=cluster] [data-testid=start-node-3]");
    for (const p of [a, b]) {
      await row(p, "node-3", "up").waitFor({ timeout: TIMEOUT });
      await waitServerCount(p, "node-1", 3);
    }
    await b.locator("[data-testid=system-message]", { hasText: "node-3 is up again" }).waitFor({ timeout: TIMEOUT });
    // Carol stays where she was recovered, still in #go.
    await send(a, "go", "welcome back carol");
    await message(c, "welcome back carol").waitFor({ timeout: TIMEOUT });
    assert.equal(await message(c, "still here").count(), 1);

    // The command line sees the same cluster.
    const before = demo.out.length;
    demo.proc.stdin.write("status\n");
    await waitFor(() => /node-3\s+\S+\s+up, ServerCount 3/.test(demo.out.slice(before)), "`status` lists node-3 up");
  });
});

test("Ctrl-C closes every node and deletes every queue it created", async () => {
  await step("shutdown", async () => {
    for (const p of Object.values(pages)) await p.close();
    for (const k of Object.keys(pages)) delete pages[k];
    const queues = [...demo.err.matchAll(/sqsadapter: subscribed.* queue=(\S+)/g)].map((m) => m[1]);
    assert.equal(queues.length, 5, "three nodes and the restarts of node-1 and node-3 each created a queue");
    demo.proc.kill("SIGINT");
    const { code } = await demo.exit;
    assert.equal(code, 0, `exit code ${code}\n${demo.err}`);
    assert.match(demo.err, /all nodes closed, their queues deleted/);
    const left = await listQueues();
    const ours = queues.map((u) => u.split("/").pop());
    assert.deepEqual(left.filter((u) => ours.includes(u.split("/").pop())), [], "queues left behind");
  });
});

// listQueues asks the endpoint (an emulator: requests are not signed) for every queue.
async function listQueues() {
  const r = await fetch(endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.ListQueues" },
    body: "{}",
  });
  const body = await r.text();
  assert.equal(r.status, 200, `ListQueues: HTTP ${r.status}: ${body}`);
  return JSON.parse(body).QueueUrls ?? [];
}

async function waitFor(cond, what, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
