// vpod's status page: redraws the server-rendered sections (same ids) from the
// snapshot JSON. Live from server-sent events (api/events, event "status"); when they
// are unavailable, api/status every 2 s. Every value is set with textContent (never
// innerHTML). Forms (Retry, Resume) are posted with fetch and the CSRF token of
// <meta name="csrf-token"> (as JSON; without JavaScript they are plain form posts).
// The login form is left to the browser. All URLs are relative: the page works under a
// sub-path. Between events, uptime and each worker's elapsed time tick here every second
// (from the snapshot's values and the time it arrived); the daemon sends a new snapshot
// every 2 s while a file is in progress (progress). A stream or poll that fails shows
// the state "not reachable" (the daemon stopped or the network is down).
"use strict";
(function () {
  var POLL_MS = 2000;
  var HIDDEN_POLL_MS = 30000;  // a tab in the background asks rarely; shown again, at once
  var STATES = ["queued", "processing", "done", "failed", "skipped"];
  var pollTimer = null;
  var last = null;  // the last snapshot shown, and when it came (ms): the ticking's base
  var lastAt = 0;
  var polling = false;  // a request of poll() is on its way
  var streaming = false;  // the event stream is open: no polling
  var visibilityHooked = false;
  var STREAM_RETRY_MS = 10000;  // while polling, try the event stream again this often

  function $(id) { return document.getElementById(id); }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function clock(epoch) {
    if (typeof epoch !== "number") { return ""; }
    var d = new Date(epoch * 1000);
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " +
      pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds()) + " UTC";
  }

  function duration(s) {
    if (typeof s !== "number") { return "?"; }
    if (s < 60) { return s.toFixed(1) + " s"; }
    var secs = Math.floor(s), m = Math.floor(secs / 60), h = Math.floor(m / 60), d = Math.floor(h / 24);
    var parts = [d ? d + "d" : "", (h % 24 || d) ? (h % 24) + "h" : "", (m % 60) + "m", (secs % 60) + "s"];
    return parts.filter(function (p) { return p; }).join(" ");
  }

  function cell(value) { return (value && value.nodeType) ? value : el("span", null, value); }

  // Replace the children of #id with a table (cells: text or nodes), or a <p class="empty">.
  function table(id, headers, rows, empty) {
    var box = $(id);
    if (!box) { return; }
    var out;
    if (!rows.length) {
      out = el("p", "empty", empty);
    } else {
      out = el("table");
      var tr = el("tr");
      headers.forEach(function (h) { tr.appendChild(el("th", null, h)); });
      out.appendChild(el("thead")).appendChild(tr);
      var body = out.appendChild(el("tbody"));
      rows.forEach(function (row) {
        var r = body.appendChild(el("tr"));
        row.forEach(function (c) { r.appendChild(el("td")).appendChild(cell(c)); });
      });
    }
    box.replaceChildren(out);
  }

  function form(action, fields) {
    var f = el("form", "act");
    f.method = "post";
    f.setAttribute("action", action);
    Object.keys(fields).forEach(function (name) {
      var i = el("input");
      i.type = "hidden"; i.name = name; i.value = fields[name];
      f.appendChild(i);
    });
    var token = el("input");
    token.type = "hidden"; token.name = "csrf_token"; token.value = csrfToken();
    f.appendChild(token);
    var b = el("button", null, action === "api/resume" ? "Resume" : "Retry");
    b.type = "submit";
    f.appendChild(b);
    return f;
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") || "" : "";
  }

  function failuresOf(s) {
    if (s.recent_failures) { return s.recent_failures.filter(function (f) { return !f.gone; }); }
    return (s.last_failures || []).filter(function (f) { return !f.gone; })
      .map(function (f) { return Object.assign({}, f, { at: f.failed_at }); });
  }

  function tick() {
    if (!last || last.state === "stopped" || $("state").textContent === "not reachable") { return; }
    var gone = (Date.now() - lastAt) / 1000;
    if (typeof last.uptime_seconds === "number") { $("uptime").textContent = duration(last.uptime_seconds + gone); }
    var cells = document.querySelectorAll("#workers .elapsed");
    for (var i = 0; i < cells.length; i++) {
      var base = parseFloat(cells[i].getAttribute("data-seconds"));
      if (!isNaN(base)) { cells[i].textContent = duration(base + gone); }
    }
  }

  function unreachable() {
    var st = $("state");
    st.textContent = "not reachable";
    st.className = "state state-unreachable";
    document.title = "vpod: not reachable";
    setLive("daemon not reachable: retrying");
  }

  function elapsedCell(seconds) {
    var e = el("span", "elapsed", duration(seconds));
    e.setAttribute("data-seconds", typeof seconds === "number" ? String(seconds) : "");
    return e;
  }

  function num(v) { return typeof v === "number" && isFinite(v); }

  // A file's Progress cell, as page.py's progress_text writes it: "43 %" (a remux or a
  // header edit), and for an encode (speed or fps reported) "43 %, 0.82x, 24 fps, 54m 2s
  // left" (speed in media seconds per second; the time left as the snapshot says).
  function progressText(f) {
    var parts = [];
    if (num(f.progress_percent)) { parts.push(Math.round(f.progress_percent) + " %"); }
    if (!num(f.speed) && !num(f.fps)) { return parts.join(""); }
    if (num(f.speed)) { parts.push(f.speed.toFixed(2) + "x"); }
    if (num(f.fps)) { parts.push(f.fps.toFixed(f.fps < 10 ? 1 : 0) + " fps"); }
    if (num(f.eta_seconds)) { parts.push(duration(f.eta_seconds) + " left"); }
    return parts.join(", ");
  }

  function render(s) {
    last = s;
    lastAt = Date.now();
    var state = s.state || "stopped";
    var st = $("state");
    st.textContent = state;
    st.className = "state state-" + state;
    document.title = "vpod: " + state;
    $("uptime").textContent = duration(s.uptime_seconds);
    $("version").textContent = s.version || "?";
    $("queue-depth").textContent = String(s.queue_depth || 0);
    var busy = (s.in_progress || []).length;
    $("worker-count").textContent = busy + " busy of " + (s.workers === null || s.workers === undefined ? "?" : s.workers);

    var paused = s.paused || {};
    $("paused").hidden = state !== "paused";
    $("paused-path").textContent = paused.path || "";
    $("paused-error").textContent = paused.error || "";

    table("workers", ["Worker", "File", "Library", "Elapsed", "Attempt", "Progress"],
      (s.in_progress || []).map(function (f) {
        return [f.worker || "?", el("span", "path", f.path), f.library || "", elapsedCell(f.elapsed_seconds), f.attempt,
          progressText(f)];
      }), "nothing in progress");

    var byLib = s.library_counts || {};
    var rows = Object.keys(byLib).sort().map(function (name) {
      return [name].concat(STATES.map(function (k) { return byLib[name][k] || 0; }));
    });
    var totals = s.counts || {};
    rows.push([el("strong", null, "all")].concat(STATES.map(function (k) { return totals[k] || 0; })));
    table("counts", ["Library"].concat(STATES), rows, "");

    var box = $("failures");
    var failures = failuresOf(s);
    if (!failures.length) {
      box.replaceChildren(el("p", "empty", "no failures"));
    } else {
      var ul = el("ul", "failures");
      failures.forEach(function (f) {
        var li = ul.appendChild(el("li", "failure"));
        var head = li.appendChild(el("div"));
        head.appendChild(el("span", "path", f.path));
        if (f.library) { head.appendChild(document.createTextNode(" ")); head.appendChild(el("span", "library", f.library)); }
        var why = li.appendChild(el("div"));
        why.appendChild(el("span", "reason", f.reason || "error"));
        why.appendChild(document.createTextNode(" "));
        why.appendChild(el("span", "when", clock(f.at)));
        if (f.id !== null && f.id !== undefined) {
          why.appendChild(document.createTextNode(" "));
          var a = why.appendChild(el("a", "events", "log events"));
          a.setAttribute("href", "api/files/" + encodeURIComponent(String(f.id)) + "/events");
        }
        li.appendChild(el("pre", "error", f.error || ""));
        li.appendChild(form("api/retry", (f.id !== null && f.id !== undefined) ? { id: String(f.id) } : { path: f.path || "" }));
      });
      box.replaceChildren(ul);
    }
    var all = $("retry-all");
    if (all) { all.hidden = !failures.length; }

    var batches = s.recent_batches || s.last_batches || [];
    var several = (s.nodes || []).length > 1;  // a Node column only with several nodes
    table("batches", ["Started"].concat(several ? ["Node"] : [], ["Files", "OK", "Unchanged", "Failed", "Skipped", "Took", ""]),
      batches.map(function (b) {
        return [el("span", "when", clock(b.started_at))].concat(several ? [b.node] : [], [b.total_files, b.success_count,
          b.unchanged_count === null || b.unchanged_count === undefined ? "" : b.unchanged_count,
          b.fail_count, b.skipped_count, duration(b.total_duration_seconds), b.stopped_early ? "stopped early" : ""]);
      }), "no batch yet");

    var names = {};
    (s.libraries || []).forEach(function (l) { names[l.path] = l.name; });
    var why = {};
    (s.unwatched || []).forEach(function (u) { why[u.path] = u.reason || "not watched"; });
    table("folders", ["Folder", "Library", "Watched"], (s.watch_paths || []).map(function (p) {
      return [el("span", "path", p), names[p] || "", why[p] === undefined ? "watched" : "not watched: " + why[p]];
    }), "no watch folder");

    var nodes = s.nodes || [];
    $("nodes-section").hidden = nodes.length <= 1;
    table("nodes", ["Node", "State", "Host", "Version", "Workers", "In progress", "Heartbeat"], nodes.map(function (n) {
      return [n.node, n.alive ? "alive" : "gone", n.host, n.version || "?",
        n.workers === null || n.workers === undefined ? "?" : n.workers, (n.doing || []).length,
        duration(n.heartbeat_age_seconds)];
    }), "");

    $("updated").textContent = clock(Date.now() / 1000);
  }

  function setLive(text) { $("live").textContent = text; }

  function poll() {
    polling = true;
    fetch("api/status", { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (s) { render(s); setLive("live (every 2 s)"); })
      .catch(function () { unreachable(); })
      .then(function () {
        polling = false;
        pollTimer = streaming ? null : setTimeout(poll, document.hidden ? HIDDEN_POLL_MS : POLL_MS);
      });
  }

  function startPolling() {
    if (pollTimer !== null || polling) { return; }
    pollTimer = setTimeout(poll, 0);
    if (visibilityHooked) { return; }
    visibilityHooked = true;
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && !polling && !streaming) { clearTimeout(pollTimer); pollTimer = setTimeout(poll, 0); }
    });
  }

  function stopPolling() {
    if (pollTimer !== null) { clearTimeout(pollTimer); pollTimer = null; }
  }

  function listen() {
    if (!window.EventSource) { startPolling(); return; }
    var es = new EventSource("api/events");
    es.addEventListener("open", function () { streaming = true; stopPolling(); setLive("live"); });
    es.addEventListener("status", function (e) {
      try { render(JSON.parse(e.data)); setLive("live"); } catch (err) { /* a bad event: wait for the next */ }
    });
    es.addEventListener("error", function () {
      // The daemon gone or restarting, or no stream (a proxy that buffers, too many
      // clients: 503): poll instead (a poll that fails too says "not reachable"), and try
      // the stream again now and then, so a daemon back up is followed by events again.
      streaming = false;
      es.close();
      unreachable();
      startPolling();
      setTimeout(listen, STREAM_RETRY_MS);
    });
  }

  function say(text) {
    var p = $("action-result");
    p.textContent = text;
    p.hidden = false;
  }

  document.addEventListener("submit", function (e) {
    var f = e.target;
    if (!(f instanceof HTMLFormElement) || !f.classList.contains("act")) { return; }
    e.preventDefault();
    var body = {};
    new FormData(f).forEach(function (value, name) {
      // JSON's own types: the API takes a file id as a number and all_failed as true.
      body[name] = name === "id" ? Number(value) : (name === "all_failed" ? value === "true" : value);
    });
    body.csrf_token = csrfToken();
    fetch(f.getAttribute("action"), {
      method: "POST", body: JSON.stringify(body), credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken(), Accept: "application/json" }
    }).then(function (r) {
      return r.text().then(function (t) {
        var answer = {};
        try { answer = JSON.parse(t); } catch (err) { answer = {}; }
        if (r.ok && answer.ok === false) {
          var why = (answer.refused || []).map(function (x) { return x.reason; }).join(", ");
          if (f.getAttribute("action") === "api/resume") { why = answer.resumed ? "" : "not resumed (state " + answer.state + ")"; }
          say("refused: " + (why || answer.error || answer.reason || "nothing done"));
        } else if (r.ok) {
          var done = f.getAttribute("action") === "api/resume"
            ? (answer.resumed ? (answer.paused_again ? "resumed, then paused again by another failure" : "resumed") : "nothing to resume")
            : "queued again (" + answer.requeued + ")";
          say("done: " + done);
        } else {
          say("refused (HTTP " + r.status + "): " + (answer.error || answer.reason || t.slice(0, 200)));
        }
      });
    }).catch(function (err) { say("not sent: " + err); });
  });

  setInterval(tick, 1000);
  listen();
}());
