// dashboard.js: the live dashboard.  It polls the JSON endpoints of its own
// origin (with the browser's Basic credentials) and updates the page in
// place.  Every string that comes from the server is set with textContent
// or an attribute, never parsed as HTML: addresses, topics and errors are
// chosen by subscribers.
"use strict";

(() => {
  const REFRESH_MS = 3000;
  const MAX_ROWS = 500;     // subscribers drawn at once; the filter narrows
  const MAX_DEAD = 200;     // dead letters drawn at once (the oldest)
  const SVG = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);
  const subsBody = document.querySelector("#subs tbody");
  const deadBody = document.querySelector("#dl tbody");

  let subs = [];            // the last listing
  const subRows = new Map(); // address -> row, reused across refreshes
  const deadRows = new Map(); // id + " " + address -> row
  let skewMs = 0;           // the server's clock minus ours (Date header)
  let statsGone = false;    // /stats answered 404: this hookcast has none
  let timer = 0, busy = false, again = false, stopped = false;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // Sets a cell's text only when it changed, so a refresh of a thousand
  // rows touches the few cells that moved.
  function put(row, i, text) {
    if (row.vals[i] !== text) {
      row.vals[i] = text;
      row.cells[i].textContent = text;
    }
  }

  // Keeps BODY's rows in the order of KEYS, reusing ROWS (key -> row, made
  // by make(key, i) when missing, filled by fill(row, i)); rows of keys no
  // longer there leave.  A row is moved only when it is out of place.
  function reconcile(body, rows, keys, make, fill) {
    const keep = new Set();
    let prev = null;

    keys.forEach((key, i) => {
      let row = rows.get(key);
      if (!row) {
        row = make(i);
        rows.set(key, row);
      }
      keep.add(key);
      fill(row, i);
      const want = prev ? prev.nextSibling : body.firstChild;
      if (want !== row.tr)
        body.insertBefore(row.tr, want);
      prev = row.tr;
    });
    for (const [key, row] of rows)
      if (!keep.has(key)) {
        row.tr.remove();
        rows.delete(key);
      }
  }

  class HTTPError extends Error {
    constructor(status, text) {
      super("HTTP " + status + (text ? ": " + text : ""));
      this.status = status;
    }
  }

  // Date has whole seconds, truncated: each sample is at most a second
  // behind the server's clock, so the largest of the last minute's is the
  // closest, and the countdown does not jump back and forth by a second.
  const skewSamples = [];
  function noteDate(header) {
    const date = Date.parse(header || ""), now = Date.now();
    if (Number.isNaN(date))
      return;
    skewSamples.push({ at: now, skew: date - now });
    while (skewSamples.length > 1 && skewSamples[0].at < now - 60000)
      skewSamples.shift();
    skewMs = Math.max(...skewSamples.map((x) => x.skew));
  }

  async function getJSON(path) {
    const r = await fetch(path, { cache: "no-store",
      headers: { Accept: "application/json" } });
    if (!r.ok)
      throw new HTTPError(r.status, (await r.text()).trim().slice(0, 200));
    noteDate(r.headers.get("Date"));
    return r.json();
  }

  function setStatus(text, bad) {
    const s = $("status");
    s.textContent = text;
    s.className = bad ? "err" : "";
  }

  // ---- subscribers --------------------------------------------------------

  // Columns: address, state, topics, queued, in flight, delivered, failed,
  // last error, evicted in.
  const SUB_CLASSES = ["addr", "", "", "n", "n", "n", "n", "error", "n"];

  function newSubRow() {
    const tr = el("tr");
    const cells = SUB_CLASSES.map((c) => tr.appendChild(el("td", c)));
    const badge = cells[1].appendChild(el("span"));
    return { tr, cells, badge, vals: [], expires: 0, state: "" };
  }

  function leftText(ms) {
    if (ms <= 0)
      return "due";
    const s = Math.floor(ms / 1000);
    if (s < 60)
      return s + "s";
    if (s < 3600)
      return Math.floor(s / 60) + "m " + String(s % 60).padStart(2, "0") + "s";
    return Math.floor(s / 3600) + "h " +
      String(Math.floor(s / 60) % 60).padStart(2, "0") + "m";
  }

  function tickRow(row) {
    put(row, 8, leftText(row.expires - (Date.now() + skewMs)));
  }

  function updateSubRow(row, s) {
    put(row, 0, s.address);
    if (row.cells[0].title !== s.url)
      row.cells[0].title = s.url;
    if (row.state !== s.state) {
      row.state = s.state;
      row.badge.className = "state " + (s.state === "failing" ? "failing" : "active");
      row.badge.textContent = s.state;
      row.tr.className = s.state === "failing" ? "failing" : "";
    }
    put(row, 2, s.topics && s.topics.length ? s.topics.join(", ") : "all");
    put(row, 3, String(s.queued));
    put(row, 4, String(s.in_flight));
    put(row, 5, String(s.delivered));
    put(row, 6, String(s.failed));
    put(row, 7, s.last_error || "");
    row.expires = Date.parse(s.expires_at);
    tickRow(row);
  }

  function matches(s, q) {
    return s.address.toLowerCase().includes(q) ||
      s.state.includes(q) ||
      (s.last_error || "").toLowerCase().includes(q) ||
      (s.topics || []).some((t) => t.toLowerCase().includes(q));
  }

  // Failing subscribers first (they are what an operator looks for), then
  // by address as the server sorts them.
  function bySeverity(a, b) {
    const fa = a.state === "failing", fb = b.state === "failing";
    if (fa !== fb)
      return fa ? -1 : 1;
    return a.address < b.address ? -1 : a.address > b.address ? 1 : 0;
  }

  function renderSubs() {
    const q = $("filter").value.trim().toLowerCase();
    const shown = (q ? subs.filter((s) => matches(s, q)) : subs.slice())
      .sort(bySeverity);
    const drawn = shown.slice(0, MAX_ROWS);

    reconcile(subsBody, subRows, drawn.map((s) => s.address), newSubRow,
      (row, i) => updateSubRow(row, drawn[i]));

    const failing = subs.filter((s) => s.state === "failing").length;
    $("subs-count").textContent = subs.length + " registered" +
      (failing ? ", " + failing + " failing" : "");
    let more = "";
    if (subs.length === 0)
      more = "No subscribers.";
    else if (shown.length === 0)
      more = "No subscriber matches the filter.";
    else if (shown.length > MAX_ROWS)
      more = "and " + (shown.length - MAX_ROWS) + " more (narrow them with the filter)";
    $("subs-more").textContent = more;
  }

  // ---- dead letters -------------------------------------------------------

  function query(d) {
    return "?address=" + encodeURIComponent(d.address) +
      "&id=" + encodeURIComponent(d.id);
  }

  function showMessage(text, bad) {
    const m = $("dl-msg");
    m.textContent = text;
    m.className = bad ? "err" : "muted";
  }

  async function act(method, path, what, buttons) {
    for (const b of buttons)
      b.disabled = true;
    try {
      const r = await fetch(path, { method, cache: "no-store" });
      const text = (await r.text()).trim().slice(0, 300);
      if (r.ok)
        showMessage(what + ": " + text + ".", false);
      else
        showMessage(what + " refused (HTTP " + r.status + "): " + text, true);
    } catch (e) {
      showMessage(what + " failed: " + e.message, true);
    } finally {
      for (const b of buttons)
        b.disabled = false;
      refresh();
    }
  }

  function newDeadRow(d) {
    const tr = el("tr");
    const cells = ["addr", "addr", "", "n", "error", "", "actions"]
      .map((c) => tr.appendChild(el("td", c)));
    const replay = cells[6].appendChild(el("button", "replay", "Replay"));
    const purge = cells[6].appendChild(el("button", "purge danger", "Purge"));
    const both = [replay, purge];
    const where = d.id + " for " + d.address;
    replay.type = purge.type = "button";
    replay.addEventListener("click", () =>
      act("POST", "/deadLetters/replay" + query(d), "Replay of " + where, both));
    purge.addEventListener("click", () => {
      if (confirm("Purge the dead letter " + where + "? It cannot be undone."))
        act("DELETE", "/deadLetters" + query(d), "Purge of " + where, both);
    });
    return { tr, cells, vals: [] };
  }

  function agoText(iso) {
    const s = Math.round((Date.now() + skewMs - Date.parse(iso)) / 1000);
    if (!(s >= 0))
      return iso;
    if (s < 60)
      return s + "s ago";
    if (s < 3600)
      return Math.floor(s / 60) + "m ago";
    if (s < 86400)
      return Math.floor(s / 3600) + "h " + Math.floor(s / 60) % 60 + "m ago";
    return iso.slice(0, 16).replace("T", " ") + " UTC";
  }

  function updateDeadRow(row, d) {
    put(row, 0, d.id);
    put(row, 1, d.address);
    put(row, 2, d.reason);
    put(row, 3, String(d.attempts));
    put(row, 4, d.last_error || (d.last_status ? "HTTP " + d.last_status : ""));
    put(row, 5, agoText(d.dead_at));
    row.cells[5].title = d.dead_at;
  }

  function renderDead(list) {
    const shown = list.slice(0, MAX_DEAD);

    reconcile(deadBody, deadRows, shown.map((d) => d.id + " " + d.address),
      (i) => newDeadRow(shown[i]), (row, i) => updateDeadRow(row, shown[i]));
    $("dl-count").textContent = list.length > MAX_DEAD ?
      "more than " + MAX_DEAD : String(list.length);
    $("dl-more").textContent = list.length === 0 ? "No dead letters." :
      list.length > MAX_DEAD ? "Showing the oldest " + MAX_DEAD +
      "; replay or purge them to see the rest." : "";
  }

  // ---- delivery rate ------------------------------------------------------

  const W = 640, H = 150, L = 46, R = 10, T = 10, B = 22;
  const SERIES = ["delivered", "failed", "accepted"];

  // The smallest 1, 2 or 5 times a power of ten at or above V.
  function ceilNice(v) {
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10])
      if (m * p >= v)
        return m * p;
    return 10 * p;
  }

  function rateText(v) {
    return (v >= 10 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(2)) + "/s";
  }

  function drawChart(stats) {
    const chart = $("chart"), legend = $("rate-legend");
    const iv = stats.interval_s > 0 ? stats.interval_s : 10;
    const pts = Array.isArray(stats.points) ? stats.points : [];
    const span = 60 * iv, t0 = stats.now - span;
    const pw = W - L - R, ph = H - T - B;
    let peak = 0;

    // A point stands at the end of its interval, at its rate.  The last one
    // is still running: it stands at "now" with its rate so far, once it is
    // two seconds old (before, one delivery would be a tall spike).
    const drawn = [];
    for (const p of pts) {
      const len = Math.min(stats.now - p.t, iv);
      if (len >= Math.min(2, iv))
        drawn.push({ at: p.t + len, len, p });
    }
    for (const d of drawn)
      for (const k of SERIES)
        peak = Math.max(peak, (d.p[k] || 0) / d.len);
    chart.replaceChildren();
    const top = peak > 0 ? ceilNice(peak) : 1;
    const x = (t) => L + Math.max(0, Math.min(1, (t - t0) / span)) * pw;
    const y = (v) => T + ph - (v / top) * ph;

    for (const f of [0, 0.5, 1]) {
      chart.appendChild(svg("line", { class: "grid", x1: L, x2: W - R,
        y1: y(top * f), y2: y(top * f) }));
      chart.appendChild(svg("text", { x: L - 4, y: y(top * f) + 4,
        "text-anchor": "end" }, rateText(top * f)));
    }
    for (const [t, label, anchor] of [[t0, "-10 min", "start"],
      [t0 + span / 2, "-5 min", "middle"], [stats.now, "now", "end"]])
      chart.appendChild(svg("text", { x: x(t), y: H - 6,
        "text-anchor": anchor }, label));
    if (pts.length === 0) {
      chart.appendChild(svg("text", { x: L + pw / 2, y: T + ph / 2,
        "text-anchor": "middle" }, "no rate data yet"));
      legend.textContent = "No intervals recorded yet.";
      return;
    }
    for (const k of SERIES)
      chart.appendChild(svg("polyline", { class: k, points: drawn.map((d) =>
        x(d.at).toFixed(1) + "," + y((d.p[k] || 0) / d.len).toFixed(1))
        .join(" ") }));

    const sums = { delivered: 0, failed: 0, accepted: 0 };
    for (const p of pts)
      for (const k of SERIES)
        sums[k] += p[k] || 0;
    const done = pts.filter((p) => p.t + iv <= stats.now);
    const last = done.length ? done[done.length - 1] : pts[pts.length - 1];
    legend.replaceChildren();
    SERIES.forEach((k, i) => {
      if (i > 0)
        legend.append(", ");
      legend.append(el("span", k, k + " " + sums[k]));
    });
    legend.append(" in the last " + Math.round(pts.length * iv / 60) +
      " min; last " + iv + " s: " + rateText((last.delivered || 0) / iv) +
      " delivered.");
  }

  async function refreshStats() {
    try {
      drawChart(await getJSON("/stats"));
    } catch (e) {
      if (e.status === 404) {
        // A hookcast without /stats: say so once, and stop asking.
        statsGone = true;
        $("chart").replaceChildren(svg("text", { x: W / 2, y: H / 2,
          "text-anchor": "middle" }, "no rate data"));
        $("rate-legend").textContent =
          "No rate data: this hookcast has no /stats endpoint.";
      } else {
        $("rate-legend").textContent = "Rate data unavailable: " + e.message;
      }
    }
  }

  // ---- the refresh loop ---------------------------------------------------

  async function refresh() {
    clearTimeout(timer);
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      const [list, dead] = await Promise.all([
        getJSON("/listSubscribers?format=json"),
        getJSON("/deadLetters?format=json&limit=" + (MAX_DEAD + 1)),
      ]);
      subs = list.subscribers;
      renderSubs();
      renderDead(dead.dead_letters);
      if (!statsGone)
        await refreshStats();
      setStatus("Updated " + new Date().toLocaleTimeString() +
        "; refreshing every " + REFRESH_MS / 1000 + " s.", false);
    } catch (e) {
      if (e.status === 401) {
        stopped = true;
        setStatus("Not authorized: reload the page and give the admin token.", true);
      } else {
        setStatus("Cannot update (" + e.message + "); trying again every " +
          REFRESH_MS / 1000 + " s.", true);
      }
    } finally {
      busy = false;
      // A hidden tab stops asking; showing it again refreshes at once.
      if (!stopped && !document.hidden)
        timer = setTimeout(refresh, again ? 0 : REFRESH_MS);
      again = false;
    }
  }

  $("filter").addEventListener("input", renderSubs);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && !stopped)
      refresh();
  });
  setInterval(() => {
    for (const row of subRows.values())
      tickRow(row);
  }, 1000);
  refresh();
})();
