// The chat page: plain DOM and the official socket.io-client bundle (window.io), served by
// whichever Go node the page was loaded from. It connects to that node, and to another one while
// that node is stopped.
"use strict";

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
};

let socket = null;
let info = { self: "?", nodes: [], topic: "?" }; // from /api/nodes
const joined = new Set(); // channels this user joined
let clusterBusy = false;
let usersBusy = false;

async function main() {
  info = await (await fetch("api/nodes")).json();
  $("node-name").textContent = info.self;
  $("topic").textContent = info.topic;
  document.title = `${info.self} · Socket.IO chat`;
  renderCluster(null);

  const params = new URLSearchParams(location.search);
  $("name-input").value = params.get("name") || `guest-${Math.floor(Math.random() * 9000 + 1000)}`;
  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    enter($("name-input").value.trim());
  });
  if (params.has("name")) enter(params.get("name"));
}

// The nodes this page connects to: its own node first, then the others in order. All of them run
// on this page's host (the demo starts them in one process), each on its own port.
function nodeTargets() {
  const i = Math.max(0, info.nodes.findIndex((n) => n.name === info.self));
  const ordered = [...info.nodes.slice(i), ...info.nodes.slice(0, i)];
  return ordered.map((n) => {
    const u = new URL(n.url);
    u.hostname = location.hostname;
    return { name: n.name, url: u.origin };
  });
}

// With connection state recovery on, the server appends the offset of every broadcast to its
// arguments (a string, last); socket.io-client keeps the last one and sends it back when it
// reconnects. The handlers take the payload only: payload(fn) calls fn with the first argument.
const payload = (fn) => (first /* , offset */) => fn(first);

function enter(name) {
  $("login").hidden = true;
  $("app").hidden = false;

  // A stopped node closes its connections and answers 503 until it is started again. The first
  // retry goes to the same node (a network blip: the session is there), the next ones to the
  // other nodes in turn: a node that closed gracefully handed its sessions off to them, so the
  // connection is recovered wherever it lands.
  const targets = nodeTargets();
  let current = 0; // index in targets of the node this socket is (or was last) connected to
  let trying = 0;
  socket = io(targets[0].url, { auth: { name }, reconnectionDelay: 500, reconnectionDelayMax: 2000 });
  socket.io.on("reconnect_attempt", (attempt) => {
    trying = (current + attempt - 1) % targets.length;
    socket.io.uri = targets[trying].url;
  });

  // Events that arrive between a disconnect and the next connect are the broadcasts a recovered
  // connection missed: the server sends them before it confirms the connection.
  let connectedBefore = false;
  let away = false;
  let missed = 0;
  const received = () => { if (away) missed++; };

  socket.on("connect", () => {
    current = trying;
    const node = targets[current].name;
    setConn(true, `connected to ${node}`);
    if (connectedBefore) {
      const rec = $("recovery");
      rec.hidden = false;
      rec.dataset.recovered = String(socket.recovered);
      rec.dataset.missed = String(missed);
      rec.dataset.node = node;
      rec.textContent = socket.recovered
        ? `connection recovered on ${node}: ${missed} missed message${missed === 1 ? "" : "s"} delivered`
        : `reconnected to ${node} (not recovered: messages sent meanwhile are lost)`;
      addSystem(rec.textContent);
    }
    connectedBefore = true;
    away = false;
    missed = 0;
    // A recovered socket is back in its rooms. A new one (another socket id) is in none: join
    // the channels again.
    if (!socket.recovered) for (const ch of joined) socket.emit("join", ch, () => {});
    refreshUsers();
    refreshCluster();
  });
  socket.on("disconnect", (reason) => {
    away = true;
    missed = 0;
    setConn(false, `disconnected (${reason}), reconnecting…`);
    renderCluster(null);
    $("users").replaceChildren(el("li", { class: "hint" }, "unknown while disconnected"));
  });
  socket.on("connect_error", () => setConn(false, `${targets[trying].name} is not answering, trying the next node…`));
  socket.on("welcome", payload((w) => { $("me").textContent = `${w.name} on ${w.node}`; }));
  socket.on("chat", payload((m) => {
    received();
    addMessage(m);
  }));
  socket.on("presence", payload((p) => {
    received();
    addSystem(`${p.name} (${p.node}) ${p.event}`);
    refreshUsers();
  }));

  $("send").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("message-input").value.trim();
    if (!text) return;
    const channel = $("target").value;
    socket.timeout(5000).emit("chat", { channel, text }, (err, res) => {
      if (err || res.error) return showError(err ? "not sent: no answer from the server" : res.error);
      showError("");
      $("message-input").value = "";
    });
  });

  $("join").addEventListener("submit", (e) => {
    e.preventDefault();
    const ch = $("channel-input").value.trim().toLowerCase().replace(/^#/, "");
    if (!ch) return;
    socket.timeout(5000).emit("join", ch, (err, res) => {
      if (err || res.error) return showError(err ? "no answer from the server" : res.error);
      showError("");
      joined.add(ch);
      $("channel-input").value = "";
      renderChannels();
      $("target").value = ch;
    });
  });

  setInterval(refreshCluster, 2000);
  setInterval(refreshUsers, 5000);
}

function leave(ch) {
  socket.timeout(5000).emit("leave", ch, () => {});
  joined.delete(ch);
  renderChannels();
}

function setConn(up, text) {
  $("conn").textContent = text;
  $("conn").className = `conn ${up ? "up" : "down"}`;
}

function showError(text) {
  $("error").textContent = text;
}

function scrollDown() {
  const list = $("messages");
  list.scrollTop = list.scrollHeight;
}

function addMessage(m) {
  const li = el("li", { "data-testid": "message", "data-channel": m.channel || "", "data-node": m.node });
  if (m.channel) li.append(el("span", { class: "chan" }, `#${m.channel}`), " ");
  li.append(el("span", { class: "who" }, m.name), " ", el("span", { class: "node", title: "the node this user is on" }, m.node),
    ": ", el("span", { class: "text", "data-testid": "message-text" }, m.text));
  $("messages").append(li);
  scrollDown();
}

function addSystem(text) {
  $("messages").append(el("li", { class: "system", "data-testid": "system-message" }, text));
  scrollDown();
}

function renderChannels() {
  const list = $("channels");
  list.replaceChildren();
  const target = $("target");
  const selected = target.value;
  target.replaceChildren(el("option", { value: "" }, "everyone"));
  for (const ch of [...joined].sort()) {
    const btn = el("button", { type: "button", "data-testid": `leave-${ch}` }, "leave");
    btn.addEventListener("click", () => leave(ch));
    list.append(el("li", { "data-testid": "channel", "data-channel": ch }, `#${ch}`, btn));
    target.append(el("option", { value: ch }, `#${ch}`));
  }
  target.value = joined.has(selected) ? selected : "";
}

function refreshUsers() {
  if (!socket || !socket.connected || usersBusy) return;
  usersBusy = true;
  socket.timeout(8000).emit("users", (err, res) => {
    usersBusy = false;
    if (err || res.error) return;
    const list = $("users");
    list.replaceChildren();
    for (const u of res.users) {
      const li = el("li", { "data-testid": "user", "data-name": u.name, "data-node": u.node },
        el("span", { class: "who" }, u.name), " ", el("span", { class: "node" }, u.node));
      for (const ch of u.channels) li.append(" ", el("span", { class: "chan" }, `#${ch}`));
      list.append(li);
    }
  });
}

function refreshCluster() {
  if (!socket || !socket.connected || clusterBusy) return;
  clusterBusy = true;
  socket.timeout(8000).emit("cluster", (err, res) => {
    clusterBusy = false;
    renderCluster(err ? null : res);
  });
}

// renderCluster shows every node this demo started: up with what it answered to the
// serverSideEmit, or down when it did not answer. Without an answer (this page's node is
// down) the other nodes' states are unknown. Rows are updated in place, so that a button
// does not move under the pointer every two seconds.
const clusterRows = new Map(); // node name -> { tr, state, count, clients, button }

function clusterRow(name) {
  let r = clusterRows.get(name);
  if (r) return r;
  const cfg = info.nodes.find((n) => n.name === name);
  r = {
    tr: el("tr", { "data-testid": `node-${name}`, "data-node": name }),
    state: el("td", { class: "state" }),
    count: el("td", { "data-testid": "server-count" }),
    clients: el("td"),
    button: el("button", { type: "button" }),
  };
  if (name === info.self) r.tr.classList.add("self");
  r.button.addEventListener("click", () => nodeAction(name, r.button.dataset.action, r.button));
  const actions = el("td");
  if (cfg) actions.append(r.button);
  r.tr.append(el("td", {}, cfg ? el("a", { href: cfg.url, target: "_blank" }, name) : name),
    r.state, r.count, r.clients, actions);
  $("cluster").querySelector("tbody").append(r.tr);
  clusterRows.set(name, r);
  return r;
}

function renderCluster(res) {
  const answers = new Map((res ? res.nodes : []).map((n) => [n.name, n]));
  const names = info.nodes.map((n) => n.name);
  for (const a of answers.values()) if (!names.includes(a.name)) names.push(a.name);
  for (const name of names) {
    const a = answers.get(name);
    const state = a ? "up" : res ? "down" : name === info.self ? "down" : "unknown";
    const r = clusterRow(name);
    // Say when a node goes down or comes back, as seen in the cluster's answers (not when this
    // page's own connection comes and goes: the header says that).
    if (res) {
      if (r.answered && r.answered !== state) addSystem(`${name} is ${state === "up" ? "up again" : "down"}`);
      r.answered = state;
    }
    r.tr.dataset.state = state;
    r.state.textContent = state;
    r.count.textContent = a ? String(a.serverCount) : "";
    r.clients.textContent = a ? String(a.clients) : "";
    const action = state === "up" ? "stop" : "start";
    r.button.hidden = state === "unknown";
    if (r.button.dataset.action !== action || !r.button.disabled) {
      r.button.dataset.action = action;
      r.button.dataset.testid = `${action}-${name}`;
      r.button.textContent = action;
      r.button.disabled = false;
    }
  }
  $("cluster-note").textContent = !res
    ? "not connected: reconnecting (to the same node first, then to the others)…"
    : `${res.self} counts ${answers.get(res.self)?.serverCount ?? "?"} servers (ServerCount); ` +
      `${answers.size} answered the serverSideEmit${res.complete ? "" : ` (${res.error || "incomplete"})`}.`;
}

async function nodeAction(name, action, btn) {
  btn.disabled = true;
  btn.textContent = action === "stop" ? "stopping…" : "starting…";
  try {
    const r = await fetch(`api/nodes/${name}/${action}`, { method: "POST" });
    const body = await r.json();
    if (!r.ok) showError(`${action} ${name}: ${body.error}`);
  } catch (e) {
    showError(`${action} ${name}: ${e}`);
  }
  btn.disabled = false; // the next render sets its label from the node's state
  refreshCluster();
}

main().catch((e) => showError(String(e)));
