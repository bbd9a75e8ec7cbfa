// rmq dashboard: a client of the HTTP admin API (/api/v1, see API.md).
// Each view renders its static parts (forms) once and its live parts from
// load(), which the poll loop calls every 2 s; forms keep what is typed.
"use strict";

const POLL_MS = 2000;
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

// esc makes any value safe to put into HTML.
function esc(v) {
  return String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

class APIError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error : "HTTP " + status);
    this.status = status;
    this.code = body && body.code;
    this.field = body && body.field;
  }
}

// api calls one endpoint and returns its JSON (null for 204).
async function api(method, path, body) {
  const opts = { method, headers: { "X-Rmq-Dashboard": "1" }, credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch("/api/v1" + path, opts);
  } catch (e) {
    throw new APIError(0, { error: "the dashboard server is unreachable", code: "offline" });
  }
  if (resp.status === 204) return null;
  const data = await resp.json().catch(() => null);
  if (!resp.ok) {
    const err = new APIError(resp.status, data);
    if (resp.status === 401) showLogin();
    throw err;
  }
  return data;
}

// ---------- formatting ----------
const fmtInt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
function fmtTime(t) {
  if (!t) return "–";
  const d = new Date(t);
  if (isNaN(d)) return "–";
  const pad = (x, n = 2) => String(x).padStart(n, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}
function fmtAgo(t) {
  if (!t) return "never";
  return fmtDuration(Date.now() - new Date(t).getTime()) + " ago";
}
function fmtDuration(ms) {
  if (ms < 0) ms = 0;
  if (ms < 1000) return ms + " ms";
  const s = ms / 1000;
  if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + Math.floor(s % 60) + " s";
  if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  return Math.floor(s / 86400) + " d";
}
function fmtBytes(n) {
  if (!n) return "0 B";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + " " + u[i];
}
const permText = (p) => ({ 6: "read + write", 4: "read only", 2: "write only" })[p] || String(p);
const badge = (text, cls) => `<span class="badge ${esc(cls || text)}">${esc(text)}</span>`;
function preview(m, n = 80) {
  const b = m.body_encoding === "text" ? m.body : "(" + m.body_bytes + " bytes, binary)";
  return b.length > n ? b.slice(0, n) + "…" : b;
}
// put sets el's HTML only when it changed, so a poll that brings nothing
// new leaves the nodes (and a button under the mouse) alone.
function put(el, html) {
  if (!el || el.__html === html) return false;
  el.innerHTML = html;
  el.__html = html;
  return true;
}
const empty = (cols, text) => `<tr><td class="empty" colspan="${cols}">${esc(text)}</td></tr>`;
const link = (href, text, cls = "") => `<a href="${esc(href)}" class="${cls}">${esc(text)}</a>`;

// ---------- toasts, confirm, login ----------
const toastLog = []; // every toast shown, newest last (tests read it)
function toast(text, bad) {
  toastLog.push((bad ? "error: " : "") + text);
  const el = document.createElement("div");
  el.className = "toast" + (bad ? " bad" : "");
  el.textContent = text;
  $("#toasts").appendChild(el);
  setTimeout(() => el.remove(), bad ? 7000 : 3500);
}
function confirmAction(text) {
  return new Promise((resolve) => {
    const d = $("#confirm");
    $("#confirm-text").textContent = text;
    d.returnValue = "";
    d.onclose = () => resolve(d.returnValue === "ok");
    d.showModal();
  });
}
function showLogin() {
  const d = $("#login");
  if (!d.open) d.showModal();
}
$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    await api("POST", "/login", { access_key: $("#login-ak").value, secret_key: $("#login-sk").value });
    $("#login").close();
    $("#login-error").textContent = "";
    refreshUser();
    tick();
  } catch (e) {
    $("#login-error").textContent = e.message;
  }
});
async function refreshUser() {
  try {
    const w = await api("GET", "/whoami");
    const el = $("#user");
    if (w.anonymous) {
      el.innerHTML = w.login_required ? "" : `<span title="no ACL: requests run without keys">anonymous</span>`;
    } else {
      el.innerHTML = `${esc(w.access_key)} <button id="logout">Log out</button>`;
      $("#logout").onclick = async () => { await api("POST", "/logout"); location.reload(); };
    }
  } catch (e) { /* the login form is up */ }
}

// run wraps a button's action: disables it, toasts the outcome, reloads.
async function run(btn, fn, okText) {
  if (btn) btn.disabled = true;
  try {
    const r = await fn();
    if (okText) toast(typeof okText === "function" ? okText(r) : okText);
    await tick();
    return r;
  } catch (e) {
    toast(e.message, true);
    return undefined;
  } finally {
    if (btn) btn.disabled = false;
  }
}

// ---------- router and poll loop ----------
function route() {
  const h = location.hash.replace(/^#\/?/, "") || "cluster";
  const [path, query] = h.split("?");
  const parts = path.split("/").map(decodeURIComponent);
  return { view: parts[0], arg: parts.slice(1).join("/"), params: new URLSearchParams(query || "") };
}

let current = null; // { view, key, load }
let timer = null;
let loading = false;

async function tick() {
  if (!current || loading) return;
  loading = true;
  clearTimeout(timer);
  const mine = current;
  try {
    await mine.load();
    setLive(true, "live · " + new Date().toLocaleTimeString());
  } catch (e) {
    if (mine === current && e.status === 401) {
      $("#live").className = "live";
      $("#live-text").textContent = "log in to see the cluster";
      $("#banner").hidden = true;
    } else if (mine === current) {
      setLive(false, e.message);
    }
  } finally {
    loading = false;
    timer = setTimeout(tick, POLL_MS);
  }
}
function setLive(ok, text) {
  $("#live").className = "live " + (ok ? "ok" : "bad");
  $("#live-text").textContent = ok ? text : "error";
  const b = $("#banner");
  b.hidden = ok;
  if (!ok) b.textContent = text;
}

function navigate() {
  const r = route();
  const key = location.hash;
  if (current && current.key === key) return;
  $$("#nav a").forEach((a) => a.classList.toggle("active", a.dataset.view === r.view));
  const v = views[r.view] || views.cluster;
  const root = $("#view");
  root.innerHTML = "";
  current = { key, load: () => Promise.resolve() };
  const load = v(root, r);
  current.load = load;
  tick();
}
window.addEventListener("hashchange", navigate);

// ---------- views ----------
const views = {};

// Cluster: broker groups, their nodes' Raft state and leader transfer.
views.cluster = (root) => {
  root.innerHTML = `
    <div class="page-head"><div><h1>Cluster</h1>
      <p class="muted">Broker groups as the NameServer last heard them: each group is one Raft group whose log is the CommitLog.</p></div></div>
    <div id="groups-live"></div>`;
  return async () => {
    const groups = await api("GET", "/cluster");
    const live = $("#groups-live");
    if (!live) return;
    if (!groups.length) {
      put(live, `<div class="panel"><p class="muted">No broker group has registered with the NameServer yet.</p></div>`);
      return;
    }
    if (live.__html) put(live, ""); // the "no group" note
    for (const g of groups) clusterGroup(live, g);
  };
};

// clusterGroup draws one broker group's panel: made once with its form,
// then only its figures and rows change, so a chosen target stays chosen.
function clusterGroup(live, g) {
  let sec = $$("section[data-group]", live).find((el) => el.dataset.group === g.broker_group);
  if (!sec) {
    sec = document.createElement("section");
    sec.className = "panel";
    sec.dataset.group = g.broker_group;
    sec.innerHTML = `<div class="panel-head"><h2>${esc(g.broker_group)} <span class="muted">· cluster ${esc(g.cluster || "–")}</span></h2>
        <form class="inline transfer-form">
          <select name="to" aria-label="new leader"></select>
          <button class="primary transfer" type="submit">Transfer leadership</button>
        </form></div>
      <div class="stats"></div>
      <div class="table-wrap"><table>
        <thead><tr><th>Node</th><th>Role</th><th class="num">Term</th><th class="num">Commit</th><th class="num">Applied</th>
          <th class="num">Lag</th><th>Client address</th><th>Raft address</th><th class="num">Log</th><th>Last seen</th></tr></thead>
        <tbody></tbody></table></div>`;
    live.appendChild(sec);
    const f = $(".transfer-form", sec);
    f.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const group = sec.dataset.group;
      const to = f.elements.to.value;
      if (!(await confirmAction(`Hand the leadership of ${group} to ${to || "the most up-to-date follower"}?`))) return;
      run(f.querySelector("button"), () => api("POST", `/cluster/groups/${encodeURIComponent(group)}/transfer`, { to }),
        `Leadership of ${group} transferred`);
    });
  }
  const followers = g.nodes.filter((n) => n.role !== "leader" && !n.down);
  const sel = $("select", sec);
  const keep = sel.value;
  if (put(sel, `<option value="">most up-to-date follower</option>` +
    followers.map((n) => `<option value="${esc(n.node)}">${esc(n.node)}</option>`).join(""))) {
    if (followers.some((n) => n.node === keep)) sel.value = keep;
  }
  $(".transfer", sec).disabled = !(g.leader && followers.length);
  const maxLag = Math.max(0, ...g.nodes.filter((n) => !n.down).map((n) => n.lag));
  put($(".stats", sec), `
    <div class="stat"><div class="label">Leader</div><div class="value leader-id">${esc(g.leader || "none")}</div></div>
    <div class="stat"><div class="label">Term</div><div class="value">${fmtInt(g.term)}</div></div>
    <div class="stat"><div class="label">Commit index</div><div class="value">${fmtInt(g.commit_index)}</div></div>
    <div class="stat"><div class="label">Applied index</div><div class="value">${fmtInt(g.applied_index)}</div></div>
    <div class="stat ${maxLag > 0 ? "warn" : ""}"><div class="label">Max follower lag</div><div class="value">${fmtInt(maxLag)}</div></div>`);
  put($("tbody", sec), g.nodes.map((n) => `<tr data-node="${esc(n.node)}">
    <td><b>${esc(n.node)}</b></td>
    <td>${badge(n.role)}${n.role === "leader" && !n.serving ? " " + badge("not serving", "warn") : ""}${n.stale_leader ? " " + badge("stale", "warn") : ""}</td>
    <td class="num">${fmtInt(n.term)}</td>
    <td class="num">${n.commit_index === null ? "–" : fmtInt(n.commit_index)}</td>
    <td class="num">${n.down ? "–" : fmtInt(n.applied_index)}</td>
    <td class="num">${n.down ? "–" : fmtInt(n.lag)}</td>
    <td class="mono">${esc(n.addr)}</td><td class="mono">${esc(n.raft_addr)}</td>
    <td class="num">${fmtBytes(n.log_bytes)}</td>
    <td class="muted">${fmtDuration(n.last_seen_ms)} ago</td></tr>`).join(""));
}

// Topics: list with rates, create, update, delete.
const lastSample = new Map(); // topic -> { sum, at }
views.topics = (root, r) => {
  if (r.arg) return topicDetail(root, r.arg);
  root.innerHTML = `
    <div class="page-head"><div><h1>Topics</h1><p class="muted">Queues, stored messages and the rate between two polls.</p></div></div>
    <section class="panel"><h2>Create a topic</h2>
      <form class="inline" id="create-topic">
        <label>Name <input name="name" id="new-topic-name" placeholder="orders" required></label>
        <label>Queues <input name="queues" type="number" min="1" max="1024" value="8" style="width:90px"></label>
        <label>Permission <select name="perm"><option value="6">read + write</option><option value="4">read only</option><option value="2">write only</option></select></label>
        <button class="primary" id="create-topic-submit" type="submit">Create</button>
      </form></section>
    <section class="panel">
      <div class="panel-head"><h2>All topics</h2><label class="check"><input type="checkbox" id="show-system"> show retry, DLQ and system topics</label></div>
      <div class="table-wrap"><table id="topics-table">
        <thead><tr><th>Topic</th><th>Broker groups</th><th class="num">Queues</th><th>Permission</th><th class="num">Messages</th>
          <th class="num">Msgs/s</th><th>Last stored</th><th></th></tr></thead>
        <tbody id="topics-live"><tr><td class="empty" colspan="8">loading…</td></tr></tbody></table></div>
    </section>`;
  const form = $("#create-topic");
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const body = { name: form.elements.name.value.trim(), queues: Number(form.elements.queues.value), perm: Number(form.elements.perm.value) };
    run($("#create-topic-submit"), () => api("POST", "/topics", body), `Topic ${body.name} created`).then((res) => {
      if (res) form.elements.name.value = "";
    });
  });
  $("#show-system").addEventListener("change", tick);
  return async () => {
    const sys = $("#show-system");
    const topics = await api("GET", "/topics?system=" + (sys && sys.checked));
    const tb = $("#topics-live");
    if (!tb) return;
    put(tb, topics.length ? topics.map((t) => {
      const prev = lastSample.get(t.name);
      const at = new Date(t.sampled_at).getTime();
      let rate = "–";
      if (prev && at > prev.at && !t.status_error) rate = ((t.max_offset_sum - prev.sum) / ((at - prev.at) / 1000)).toFixed(1);
      if (!t.status_error) lastSample.set(t.name, { sum: t.max_offset_sum, at });
      return `<tr data-topic="${esc(t.name)}">
        <td>${link("#/topics/" + encodeURIComponent(t.name), t.name)} ${t.system ? badge("system") : ""}</td>
        <td>${t.broker_groups.map((g) => esc(g.broker_group)).join(", ")}</td>
        <td class="num">${fmtInt(t.queues)}</td><td>${esc(permText(t.perm))}</td>
        <td class="num">${t.status_error ? badge("unavailable", "bad") : fmtInt(t.messages)}</td>
        <td class="num tps">${rate}</td>
        <td class="muted">${t.last_store_time ? fmtAgo(t.last_store_time) : "never"}</td>
        <td><div class="actions">${link("#/messages?topic=" + encodeURIComponent(t.name), "Messages")}
          <button class="small danger delete-topic">Delete</button></div></td></tr>`;
    }).join("") : empty(8, "No topics yet: create one above."));
    $$(".delete-topic", tb).forEach((b) => {
      b.onclick = async () => {
        const name = b.closest("tr").dataset.topic;
        if (!(await confirmAction(`Delete topic ${name} and its messages from every broker group?`))) return;
        run(b, () => api("DELETE", "/topics/" + encodeURIComponent(name)), `Topic ${name} deleted`);
      };
    });
  };
};

function topicDetail(root, name) {
  const enc = encodeURIComponent(name);
  root.innerHTML = `
    <div class="crumbs">${link("#/topics", "Topics")} /</div>
    <div class="page-head"><div><h1>${esc(name)}</h1><p class="muted" id="topic-summary">&nbsp;</p></div>
      <div class="actions">${link("#/messages?topic=" + enc, "Browse messages →")}</div></div>
    <div class="grid2">
      <section class="panel"><h2>Settings</h2>
        <form class="inline" id="update-topic">
          <label>Queues per broker group <input name="queues" type="number" min="1" max="1024" style="width:110px"></label>
          <label>Permission <select name="perm"><option value="6">read + write</option><option value="4">read only</option><option value="2">write only</option></select></label>
          <button class="primary" type="submit" id="update-topic-submit">Update</button>
        </form>
        <p class="muted">Queues can be added, not removed.</p></section>
      <section class="panel"><h2>Send a message</h2>${sendForm(name)}</section>
    </div>
    <section class="panel" style="margin-top:18px"><h2>Queues</h2><div class="table-wrap"><table>
      <thead><tr><th>Broker group</th><th class="num">Queue</th><th class="num">Min offset</th><th class="num">Max offset</th>
        <th class="num">Messages</th><th class="num">Delayed</th><th>Last stored</th></tr></thead>
      <tbody id="queues-live"></tbody></table></div></section>`;
  let filled = false;
  const form = $("#update-topic");
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    run($("#update-topic-submit"), () => api("PATCH", "/topics/" + enc,
      { queues: Number(form.elements.queues.value), perm: Number(form.elements.perm.value) }), `Topic ${name} updated`);
  });
  wireSendForm();
  return async () => {
    const t = await api("GET", "/topics/" + enc);
    if (!$("#queues-live")) return;
    if (!filled) {
      form.elements.queues.value = t.broker_groups[0].queues;
      form.elements.perm.value = t.perm;
      filled = true;
    }
    $("#topic-summary").textContent = `${fmtInt(t.messages)} messages in ${t.queues} queues on ${t.broker_groups.map((g) => g.broker_group).join(", ")} · ${permText(t.perm)}`;
    put($("#queues-live"), t.queue_list.map((q) => `<tr>
      <td>${esc(q.broker_group)}</td><td class="num">${q.queue_id}</td><td class="num">${fmtInt(q.min_offset)}</td>
      <td class="num">${fmtInt(q.max_offset)}</td><td class="num">${fmtInt(q.messages)}</td><td class="num">${fmtInt(q.delayed)}</td>
      <td class="muted">${q.last_store_time ? fmtTime(q.last_store_time) : "never"}</td></tr>`).join("") || empty(7, "no queues"));
  };
}

// sendForm is the "send a message" form; topic "" shows a topic field.
function sendForm(topic) {
  return `<form class="stack" id="send-form">
    <div class="row">
      <label>Topic <input name="topic" id="send-topic" value="${esc(topic)}" required placeholder="orders"></label>
      <label>Tag <input name="tags" id="send-tag" placeholder="optional"></label>
      <label>Keys <input name="keys" id="send-keys" placeholder="space-separated"></label>
    </div>
    <label>Body <textarea name="body" id="send-body" rows="3" placeholder='{"hello": "rmq"}'></textarea></label>
    <label>Properties <input name="props" id="send-props" placeholder="k=v, k2=v2"></label>
    <div class="actions" style="margin-top:0"><span class="muted" id="send-result"></span><button class="primary" id="send-submit" type="submit">Send</button></div>
  </form>`;
}
function wireSendForm() {
  const f = $("#send-form");
  f.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const props = {};
    for (const kv of f.elements.props.value.split(",")) {
      const i = kv.indexOf("=");
      if (i > 0) props[kv.slice(0, i).trim()] = kv.slice(i + 1).trim();
    }
    const body = { topic: f.elements.topic.value.trim(), body: f.elements.body.value, tags: f.elements.tags.value.trim(),
      keys: f.elements.keys.value.split(/\s+/).filter(Boolean), properties: props };
    run($("#send-submit"), () => api("POST", "/messages", body), (r) => `Sent ${r.msg_id} to ${r.topic} ${r.broker_group}#${r.queue_id}`).then((r) => {
      if (!r) return;
      $("#send-result").innerHTML = `sent ${link("#/messages/" + r.msg_id, r.msg_id, "mono")} · offset ${r.offset}`;
      f.elements.body.value = "";
    });
  });
}

// Consumer groups: list and detail with lag, reset and DLQ.
views.groups = (root, r) => {
  if (r.arg) return groupDetail(root, r.arg);
  root.innerHTML = `
    <div class="page-head"><div><h1>Consumer groups</h1><p class="muted">Groups with committed offsets or live members.</p></div></div>
    <section class="panel"><div class="table-wrap"><table>
      <thead><tr><th>Group</th><th>Mode</th><th class="num">Members</th><th>Topics</th><th class="num">Lag</th>
        <th class="num">Retry lag</th><th class="num">Retries waiting</th><th class="num">Dead letters</th></tr></thead>
      <tbody id="groups-live"><tr><td class="empty" colspan="8">loading…</td></tr></tbody></table></div></section>`;
  return async () => {
    const gs = await api("GET", "/groups");
    const tb = $("#groups-live");
    if (!tb) return;
    put(tb, gs.length ? gs.map((g) => `<tr class="clickable" data-group="${esc(g.group)}" onclick="location.hash='#/groups/${esc(encodeURIComponent(g.group))}'">
      <td>${link("#/groups/" + encodeURIComponent(g.group), g.group)}${g.error ? " " + badge("error", "bad") : ""}</td>
      <td>${g.mode ? badge(g.mode, "follower") : '<span class="muted">offline</span>'}</td>
      <td class="num">${g.members.length}</td><td>${g.topics.filter((t) => !t.startsWith("%RETRY%")).map(esc).join(", ")}</td>
      <td class="num">${fmtInt(g.lag)}</td><td class="num">${fmtInt(g.retry_lag)}</td><td class="num">${fmtInt(g.pending_retries)}</td>
      <td class="num">${g.dead_letters ? badge(fmtInt(g.dead_letters), "bad") : "0"}</td></tr>`).join("")
      : empty(8, "No consumer groups yet."));
  };
};

function groupDetail(root, name) {
  const enc = encodeURIComponent(name);
  root.innerHTML = `
    <div class="crumbs">${link("#/groups", "Consumer groups")} /</div>
    <div class="page-head"><div><h1>${esc(name)}</h1><p class="muted" id="group-summary">&nbsp;</p></div></div>
    <div class="stats" id="group-stats"></div>
    <div class="grid2">
      <section class="panel"><h2>Members</h2><div id="members-live" class="muted">–</div></section>
      <section class="panel"><h2>Reset offsets</h2>
        <form class="inline" id="reset-form">
          <label>Topic <select name="topic" id="reset-topic"></select></label>
          <label>To <select name="to" id="reset-to"><option value="earliest">earliest (reconsume all)</option><option value="now">now (skip the backlog)</option>
            <option value="1h">1 hour ago</option><option value="custom">a time…</option></select></label>
          <label id="reset-at-label" hidden>Time <input type="datetime-local" step="1" id="reset-at"></label>
          <button class="primary" id="reset-submit" type="submit">Reset</button>
        </form>
        <p class="muted">Running members restart from the new offsets within a heartbeat.</p></section>
    </div>
    <section class="panel" style="margin-top:18px"><h2>Queues</h2><div class="table-wrap"><table>
      <thead><tr><th>Topic</th><th>Broker group</th><th class="num">Queue</th><th class="num">Broker offset</th><th class="num">Consumer offset</th>
        <th>Lag</th><th>Owner</th><th class="num">In flight</th></tr></thead>
      <tbody id="gqueues-live"></tbody></table></div></section>
    <section class="panel"><div class="panel-head"><h2>Dead-letter queue</h2>
      <button class="danger" id="resend-all">Resend all</button></div>
      <div class="table-wrap"><table>
      <thead><tr><th>Message id</th><th>First stored in</th><th class="num">Failures</th><th>Stored</th><th>Body</th><th></th></tr></thead>
      <tbody id="dlq-live"></tbody></table></div></section>`;
  const form = $("#reset-form");
  $("#reset-to").addEventListener("change", () => { $("#reset-at-label").hidden = $("#reset-to").value !== "custom"; });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    let to = $("#reset-to").value;
    if (to === "custom") {
      const v = $("#reset-at").value;
      if (!v) { toast("pick a time", true); return; }
      to = new Date(v).toISOString();
    }
    const topic = $("#reset-topic").value;
    if (!(await confirmAction(`Reset ${name}'s offsets of ${topic} to ${to}?`))) return;
    run($("#reset-submit"), () => api("POST", `/groups/${enc}/reset-offset`, { topic, to }),
      (r) => `Reset ${r.offsets.length} queues of ${topic}`);
  });
  $("#resend-all").onclick = async (ev) => {
    if (!(await confirmAction(`Resend every dead letter of ${name} through its retry queue?`))) return;
    run(ev.target, () => api("POST", `/groups/${enc}/dlq/resend`, { all: true }), (r) => `Resent ${r.resent} dead letters`);
  };
  let topicsShown = "";
  return async () => {
    const [g, dls] = await Promise.all([api("GET", "/groups/" + enc), api("GET", `/groups/${enc}/dlq?limit=200`)]);
    if (!$("#gqueues-live")) return;
    $("#group-summary").textContent = g.mode ? `${g.mode} consumer, ${g.members.length} live member(s)` : "no live members";
    put($("#group-stats"), [
      ["Total lag", g.lag, g.lag ? "warn" : ""], ["Retry lag", g.retry_lag, g.retry_lag ? "warn" : ""],
      ["Retries waiting", g.pending_retries, ""], ["Dead letters", g.dead_letters, g.dead_letters ? "bad" : ""],
    ].map(([l, v, c]) => `<div class="stat ${c}"><div class="label">${l}</div><div class="value" data-stat="${esc(l)}">${fmtInt(v)}</div></div>`).join(""));
    put($("#members-live"), g.members.length ? g.members.map((m) => `<div class="mono">${esc(m)}</div>`).join("") : "No live members.");
    const topics = g.topics.filter((t) => !t.startsWith("%RETRY%"));
    if (topics.join() !== topicsShown) {
      const sel = $("#reset-topic");
      const keep = sel.value;
      sel.innerHTML = topics.map((t) => `<option>${esc(t)}</option>`).join("");
      if (topics.includes(keep)) sel.value = keep;
      topicsShown = topics.join();
    }
    const maxLag = Math.max(1, ...g.queues.map((q) => q.lag));
    put($("#gqueues-live"), g.queues.map((q) => `<tr data-queue="${esc(q.topic)}#${q.queue_id}">
      <td>${esc(q.topic)}</td><td>${esc(q.broker_group)}</td><td class="num">${q.queue_id}</td>
      <td class="num">${fmtInt(q.broker_offset)}</td><td class="num consumer-offset">${fmtInt(q.consumer_offset)}</td>
      <td><span class="lagbar"><span style="width:${Math.round((100 * q.lag) / maxLag)}%"></span></span><span class="lag">${fmtInt(q.lag)}</span></td>
      <td class="mono muted">${esc(q.owner || "–")}</td><td class="num">${fmtInt(q.in_flight)}</td></tr>`).join("") || empty(8, "no queues"));
    const tb = $("#dlq-live");
    put(tb, dls.length ? dls.map((m) => `<tr data-msg="${esc(m.msg_id)}">
      <td>${link("#/messages/" + m.msg_id, m.msg_id, "mono")}</td>
      <td>${m.retry_of ? esc(m.retry_of.topic || "(deleted topic)") + " #" + m.retry_of.queue_id + " @" + m.retry_of.offset : "–"}</td>
      <td class="num">${m.failures}</td><td class="muted">${fmtTime(m.store_time)}</td>
      <td class="mono">${esc(preview(m, 60))}</td>
      <td><button class="small resend">Resend</button></td></tr>`).join("") : empty(6, "No dead letters."));
    $("#resend-all").disabled = !dls.length;
    $$(".resend", tb).forEach((b) => {
      b.onclick = () => {
        const id = b.closest("tr").dataset.msg;
        run(b, () => api("POST", `/groups/${enc}/dlq/resend`, { ids: [id] }), (r) => `Resent ${r.resent} message: ${id}`);
      };
    });
  };
}

// Messages: send, query by time / key / id, detail with trace.
views.messages = (root, r) => {
  if (r.arg) return messageDetail(root, r.arg);
  const p = r.params;
  root.innerHTML = `
    <div class="page-head"><div><h1>Messages</h1><p class="muted">Find stored messages by store time, key or message id.</p></div></div>
    <div class="grid2">
      <section class="panel"><h2>Find</h2>
        <div class="tabs" id="mode-tabs">
          <button data-mode="time" class="active">By time</button><button data-mode="key">By key</button><button data-mode="id">By id</button></div>
        <form class="stack" id="find-form">
          <div class="row">
            <label data-for="time key">Topic <input name="topic" id="find-topic" value="${esc(p.get("topic") || "")}" placeholder="orders"></label>
            <label data-for="time">Since <select name="since" id="find-since"><option value="5m">last 5 minutes</option><option value="1h" selected>last hour</option>
              <option value="24h">last 24 hours</option><option value="earliest">all</option><option value="custom">a range…</option></select></label>
            <label data-for="range" hidden>From <input type="datetime-local" step="1" id="find-from"></label>
            <label data-for="range" hidden>Until <input type="datetime-local" step="1" id="find-until"></label>
            <label data-for="key" hidden>Key <input name="key" id="find-key" value="${esc(p.get("key") || "")}"></label>
            <label data-for="id" hidden>Message id <input name="id" id="find-id" class="mono" size="34" placeholder="32 hex characters"></label>
          </div>
          <div class="actions" style="margin-top:0"><label class="check" data-for="time"><input type="checkbox" id="find-live" checked> follow new messages</label>
            <button class="primary" id="find-submit" type="submit">Search</button></div>
        </form></section>
      <section class="panel"><h2>Send a message</h2>${sendForm(p.get("topic") || "")}</section>
    </div>
    <section class="panel" style="margin-top:18px"><div class="panel-head"><h2 id="results-title">Results</h2><span class="muted" id="results-note"></span></div>
      <div class="table-wrap"><table>
      <thead><tr><th>Message id</th><th>Topic</th><th>Queue</th><th class="num">Offset</th><th>Stored</th><th>Tag</th><th>Keys</th><th>Body</th></tr></thead>
      <tbody id="messages-live"><tr><td class="empty" colspan="8">Give a topic and search.</td></tr></tbody></table></div></section>`;
  let mode = "time";
  let query = null; // the last submitted search
  const setMode = (m) => {
    mode = m;
    $$("#mode-tabs button").forEach((b) => b.classList.toggle("active", b.dataset.mode === m));
    const shown = [m];
    if (m === "time" && $("#find-since").value === "custom") shown.push("range");
    $$("#find-form [data-for]").forEach((el) => { el.hidden = !el.dataset.for.split(" ").some((f) => shown.includes(f)); });
  };
  $("#find-since").addEventListener("change", () => setMode(mode));
  $$("#mode-tabs button").forEach((b) => b.addEventListener("click", (ev) => { ev.preventDefault(); setMode(b.dataset.mode); }));
  if (p.get("key")) setMode("key");
  const form = $("#find-form");
  const build = () => {
    if (mode === "id") return "/messages?id=" + encodeURIComponent($("#find-id").value.trim());
    const topic = encodeURIComponent($("#find-topic").value.trim());
    if (mode === "key") return `/messages?topic=${topic}&key=${encodeURIComponent($("#find-key").value.trim())}`;
    const since = $("#find-since").value;
    if (since !== "custom") return `/messages?topic=${topic}&since=${since}&limit=200`;
    const iso = (v) => (v ? encodeURIComponent(new Date(v).toISOString()) : "");
    let path = `/messages?topic=${topic}&since=${iso($("#find-from").value) || "earliest"}&limit=200`;
    if ($("#find-until").value) path += "&until=" + iso($("#find-until").value);
    return path;
  };
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    query = { path: build(), mode };
    put($("#messages-live"), empty(8, "searching…"));
    tick();
  });
  if (p.get("topic")) query = { path: build(), mode };
  wireSendForm();
  return async () => {
    if (!query) return;
    const follows = query.mode === "time" && !query.path.includes("&until=") && $("#find-live").checked;
    if (query.shown && !follows) return; // a finished search is not repeated
    const tb = $("#messages-live");
    let ms;
    try {
      ms = await api("GET", query.path);
    } catch (e) {
      if (e.status === 400 || e.status === 404) {
        put(tb, empty(8, e.message));
        query.shown = true;
        return;
      }
      throw e;
    }
    query.shown = true;
    if (!$("#messages-live")) return;
    if (query.mode === "time") ms.reverse(); // newest first
    let note = `${ms.length} message(s)` + (query.mode === "time" ? " · newest first" : "");
    if (query.mode === "time" && ms.length >= 200) note = `the first 200 of the range per broker group, newest first: narrow the range to see later ones`;
    $("#results-note").textContent = note;
    put(tb, ms.length ? ms.map((m) => `<tr class="clickable" data-msg="${esc(m.msg_id)}" onclick="location.hash='#/messages/${esc(m.msg_id)}'">
      <td>${link("#/messages/" + m.msg_id, m.msg_id, "mono")}</td><td>${esc(m.topic)}</td>
      <td>${esc(m.broker_group)}#${m.queue_id}</td><td class="num">${m.offset === null ? badge(m.pending, "warn") : fmtInt(m.offset)}</td>
      <td class="muted">${fmtTime(m.store_time)}</td><td>${m.tags ? badge(m.tags, "consume") : ""}</td>
      <td class="mono">${esc(m.keys.join(" "))}</td><td class="mono body-preview">${esc(preview(m))}</td></tr>`).join("")
      : empty(8, "No messages found."));
  };
};

function messageDetail(root, id) {
  root.innerHTML = `
    <div class="crumbs">${link("#/messages", "Messages")} /</div>
    <div class="page-head"><div><h1 class="mono" style="font-size:19px">${esc(id)}</h1><p class="muted" id="msg-summary">&nbsp;</p></div></div>
    <div id="msg-live"></div>
    <section class="panel"><h2>Trace</h2><div id="trace-live" class="muted">loading…</div></section>`;
  let shown = false;
  return async () => {
    const [copies, trace] = await Promise.all([
      shown ? null : api("GET", "/messages/" + encodeURIComponent(id)).catch((e) => e),
      api("GET", `/messages/${encodeURIComponent(id)}/trace`).catch((e) => e),
    ]);
    const live = $("#msg-live");
    if (!live) return;
    if (copies instanceof Error) {
      if (copies.status !== 404 && copies.status !== 400) throw copies;
      live.innerHTML = `<div class="panel"><p class="error-text">${esc(copies.message)}</p></div>`;
      shown = true;
    } else if (copies) {
      shown = true;
      const m = copies[0];
      $("#msg-summary").textContent = `${m.topic} · ${m.broker_group}#${m.queue_id} · ` + (m.offset === null ? m.pending : "offset " + m.offset) +
        (copies.length > 1 ? ` · stored ${copies.length} times` : "");
      live.innerHTML = copies.map((m) => `<div class="grid2" style="margin-bottom:18px">
        <section class="panel"><h2>Message</h2><dl class="kv">
          <dt>Topic</dt><dd>${link("#/topics/" + encodeURIComponent(m.topic), m.topic)}</dd>
          <dt>Queue</dt><dd>${esc(m.broker_group)}#${m.queue_id}</dd>
          <dt>Offset</dt><dd>${m.offset === null ? badge(m.pending, "warn") : fmtInt(m.offset)}</dd>
          <dt>Stored</dt><dd>${fmtTime(m.store_time)}</dd><dt>Born</dt><dd>${fmtTime(m.born_time)}</dd>
          <dt>Tag</dt><dd>${esc(m.tags || "–")}</dd><dt>Keys</dt><dd class="mono">${esc(m.keys.join(" ") || "–")}</dd>
          <dt>Reconsumed</dt><dd>${m.reconsume_times}</dd>
          ${m.retry_of ? `<dt>First stored</dt><dd>${esc(m.retry_of.topic)} #${m.retry_of.queue_id} @${m.retry_of.offset}</dd>` : ""}
        </dl>
        <h3>Properties</h3>${Object.keys(m.properties).length ? `<table><tbody>${Object.entries(m.properties).sort().map(([k, v]) =>
          `<tr><td class="mono">${esc(k)}</td><td class="mono">${esc(v)}</td></tr>`).join("")}</tbody></table>` : '<p class="muted">none</p>'}
        </section>
        <section class="panel"><h2>Body <span class="muted">· ${fmtBytes(m.body_bytes)}${m.body_encoding === "base64" ? ", base64" : ""}</span></h2>
          <pre class="body" id="msg-body">${esc(prettyBody(m))}</pre></section></div>`).join("");
    }
    const tl = $("#trace-live");
    tl.classList.toggle("muted", trace instanceof Error || !trace.length);
    if (trace instanceof Error) {
      put(tl, trace.status === 404 ? "Not traced: no traced client has recorded this message (producers and consumers trace when created with Trace)." : esc(trace.message));
      return;
    }
    if (!trace.length) {
      put(tl, "Not traced yet.");
      return;
    }
    const t0 = new Date(trace[0].at).getTime();
    put(tl, `<ol class="timeline">${trace.map((r) => `<li class="trace-${esc(r.kind)}">
      <div>${badge(r.kind)} <b>${esc(traceTitle(r))}</b> ${badge(r.result || "ok", traceClass(r.result))}</div>
      <div class="when">${fmtTime(r.at)} · +${fmtDuration(new Date(r.at).getTime() - t0)} · ${esc(r.client)} (${esc(r.group)})${r.cost_us ? " · took " + (r.cost_us / 1000).toFixed(1) + " ms" : ""}</div></li>`).join("")}</ol>`);
  };
}
function traceClass(result) {
  if (!result || result === "ok" || result === "success") return "ok";
  if (result === "delivered") return "deliver";
  if (result === "retry") return "retry";
  return "bad"; // dlq, dropped, a send error
}
function traceTitle(r) {
  if (r.kind === "send") return `sent to ${r.broker || "?"}#${r.queue_id} at offset ${r.offset}`;
  if (r.kind === "deliver") return `delivered to ${r.group}` + (r.reconsume ? ` (attempt ${r.reconsume + 1})` : "");
  return `consumed by ${r.group}`;
}
function prettyBody(m) {
  if (m.body_encoding !== "text") return m.body;
  try { return JSON.stringify(JSON.parse(m.body), null, 2); } catch (e) { return m.body; }
}

// Transactions: open half messages and the counters.
views.transactions = (root) => {
  root.innerHTML = `
    <div class="page-head"><div><h1>Transactions</h1><p class="muted">Half messages waiting for their producer's commit or rollback.</p></div></div>
    <div class="stats" id="tx-stats"></div>
    <section class="panel"><h2>Open</h2><div class="table-wrap"><table>
      <thead><tr><th>Message id</th><th>Topic</th><th>Producer group</th><th>Age</th><th class="num">Check-backs</th><th>Last check</th><th>Body</th></tr></thead>
      <tbody id="tx-live"></tbody></table></div></section>
    <section class="panel"><h2>Rolled back by the broker</h2><div class="table-wrap"><table>
      <thead><tr><th>Broker group</th><th>Topic</th><th class="num">Queue</th><th>Stored</th><th>Rolled back</th><th class="num">Check-backs</th></tr></thead>
      <tbody id="txd-live"></tbody></table></div></section>`;
  return async () => {
    const tx = await api("GET", "/transactions");
    if (!$("#tx-live")) return;
    put($("#tx-stats"), [["Open", tx.open.length, tx.open.length ? "warn" : ""], ["Committed", tx.committed, ""],
      ["Rolled back", tx.rolled_back, ""], ["Rolled back by broker", tx.broker_rolled_back, tx.broker_rolled_back ? "bad" : ""]]
      .map(([l, v, c]) => `<div class="stat ${c}"><div class="label">${l}</div><div class="value">${fmtInt(v)}</div></div>`).join(""));
    put($("#tx-live"), tx.open.map((t) => `<tr>
      <td class="mono">${esc(t.msg_id)}</td><td>${esc(t.topic)}</td><td>${esc(t.producer_group)}</td><td>${fmtDuration(t.age_ms)}</td>
      <td class="num">${t.checks}</td><td class="muted">${t.last_check ? fmtTime(t.last_check) : "–"}</td><td class="mono">${esc(preview(t, 50))}</td></tr>`).join("")
      || empty(7, "No open transactions."));
    put($("#txd-live"), tx.discarded.map((d) => `<tr><td>${esc(d.broker_group)}</td><td>${esc(d.topic)}</td><td class="num">${d.queue_id}</td>
      <td class="muted">${fmtTime(d.stored)}</td><td class="muted">${fmtTime(d.at)}</td><td class="num">${d.checks}</td></tr>`).join("")
      || empty(6, "None."));
  };
};

refreshUser();
navigate();
