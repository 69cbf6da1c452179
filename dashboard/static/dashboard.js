// Keeps the server-rendered dashboard current from the event stream (GET /api/v1/events).
// Hand-written on purpose: about 250 lines with no dependency, served by the service itself
// (no CDN, no build step). Without JavaScript the pages still show everything, as of loading.
//
// - Overview page: a run event replaces, inserts or removes that run's row in the newest-runs
//   table at once (from the run object the event carries), and re-fetches the overview fragment
//   (/dashboard/overview: totals, charts, error groups), debounced.
// - Run page: a run event updates the status and fields at once; a step or checkpoint event
//   re-fetches the run's section (/dashboard/runs/<id>), debounced.
// - A `reset` event (the stream lost events the client had not seen) re-fetches the whole view.
"use strict";

(function () {
  const body = document.body;
  const page = body.dataset.page;
  if (!page) return;

  const KINDS = ["run_created", "run_updated", "run_deleted", "state_appended", "checkpoint_appended", "reset"];
  // Sent before the service ends a stream that reads too slowly; the browser then reconnects.
  const DROPPED = "dropped";
  const STATUS_CLASSES = ["pending", "running", "paused", "completed", "failed", "cancelled"];
  const indicator = document.getElementById("live");

  function setLive(state, text) {
    if (!indicator) return;
    indicator.hidden = false;
    indicator.dataset.state = state;
    indicator.querySelector(".live-text").textContent = text;
  }

  // --- formatting: the same text as the Jinja filters in dashboard/__init__.py -----------------
  function fmtTime(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    return isNaN(d.getTime()) ? "—" : d.toISOString().slice(0, 19).replace("T", " ");
  }
  function fmtDuration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    if (Math.abs(seconds) < 60) return seconds.toFixed(1) + " s";
    const whole = Math.round(seconds);
    const pad = (n) => String(n).padStart(2, "0");
    const mod = (a, b) => ((a % b) + b) % b;
    if (Math.abs(whole) < 3600) return Math.floor(whole / 60) + " min " + pad(mod(whole, 60)) + " s";
    return Math.floor(whole / 3600) + " h " + pad(Math.floor(mod(whole, 3600) / 60)) + " min";
  }
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const child of children || []) node.append(child);
    return node;
  }
  function badge(status) {
    const cls = STATUS_CLASSES.includes(status) ? status : "other";
    return el("span", { class: "badge s-" + cls, "data-field": "status" }, [status]);
  }
  function timeNode(iso) {
    return iso ? el("time", { datetime: iso }, [fmtTime(iso)]) : "—";
  }

  // --- fetching server-rendered fragments ------------------------------------------------------
  // Run `task` once events stop for `quiet` ms, and at least every `most` ms while they keep coming.
  function debounced(task, quiet, most) {
    let timer = null;
    let first = 0;
    let running = false;
    let again = false;
    async function fire() {
      timer = null;
      first = 0;
      if (running) {
        again = true;
        return;
      }
      running = true;
      try {
        await task();
      } catch (err) {
        console.warn("dashboard refresh failed", err);
      } finally {
        running = false;
        if (again) {
          again = false;
          schedule();
        }
      }
    }
    function schedule() {
      const now = Date.now();
      if (!first) first = now;
      clearTimeout(timer);
      timer = setTimeout(fire, Math.max(0, Math.min(quiet, first + most - now)));
    }
    return schedule;
  }

  async function fetchDocument(url) {
    const response = await fetch(url, { headers: { Accept: "text/html" }, cache: "no-store" });
    if (!response.ok) throw new Error(url + ": " + response.status);
    return new DOMParser().parseFromString(await response.text(), "text/html");
  }

  // Replace `selector`'s content with the same element of `doc`, keeping open <details> open.
  function detailsKey(details) {
    const owner = details.closest("[data-step-order],[data-checkpoint-id]");
    return owner ? "s" + (owner.dataset.stepOrder || "") + "c" + (owner.dataset.checkpointId || "") : null;
  }
  function swap(doc, selector) {
    const target = document.querySelector(selector);
    const source = doc.querySelector(selector);
    if (!target || !source) return;
    const open = new Set(Array.from(target.querySelectorAll("details[open]")).map(detailsKey));
    target.replaceChildren(...Array.from(source.childNodes).map((n) => document.importNode(n, true)));
    for (const d of target.querySelectorAll("details")) {
      const key = detailsKey(d);
      if (key && open.has(key)) d.open = true;
    }
  }

  // --- the stream ---------------------------------------------------------------------------------
  function connect(url, onEvent, onReconnected) {
    let source = null;
    let retry = 2000;
    let everOpen = false;
    function open() {
      source = new EventSource(url);
      source.onopen = () => {
        setLive("live", "live");
        retry = 2000;
        if (everOpen) onReconnected();
        everOpen = true;
      };
      source.onerror = () => {
        if (source.readyState === EventSource.CLOSED) {
          // The browser gave up (e.g. a non-stream answer): try again ourselves, backing off.
          setLive("off", "offline");
          source.close();
          setTimeout(open, retry);
          retry = Math.min(retry * 2, 30000);
        } else {
          setLive("reconnecting", "reconnecting");
        }
      };
      source.addEventListener(DROPPED, () => setLive("reconnecting", "reconnecting"));
      for (const kind of KINDS) {
        source.addEventListener(kind, (message) => {
          let data = {};
          try {
            data = JSON.parse(message.data);
          } catch (err) {
            console.warn("unreadable event", message.data);
          }
          onEvent(kind, data);
        });
      }
    }
    setLive("reconnecting", "connecting");
    open();
    window.addEventListener("pagehide", () => source && source.close());
  }

  // --- overview page ----------------------------------------------------------------------------
  function indexPage() {
    const tbody = document.querySelector("#runs tbody");
    const empty = document.querySelector("p.empty");
    const pageSize = parseInt(body.dataset.pageSize || "50", 10);
    const firstPage = body.dataset.firstPage === "true";
    const split = (v) => (v ? v.split(",").map((s) => s.trim()).filter(Boolean) : []);
    const statuses = split(body.dataset.filterStatus);
    const recordTypes = split(body.dataset.filterRecordType);
    const q = (body.dataset.filterQ || "").toLowerCase();

    function matches(run) {
      if (statuses.length && !statuses.includes(run.status)) return false;
      if (recordTypes.length && !recordTypes.includes(run.record_type)) return false;
      if (!q) return true;
      return [run.id, run.file_path, run.record_type, run.status, run.error_message || ""].some((f) =>
        String(f).toLowerCase().includes(q),
      );
    }

    function buildRow(run) {
      const msg = run.error_message
        ? [el("span", { class: "clamp", title: run.error_message }, [run.error_message])]
        : [];
      return el("tr", { "data-run-id": run.id, "data-created-at": run.created_at || "" }, [
        el("td", { "data-label": "Run" }, [
          el("a", { class: "mono", href: "/dashboard/runs/" + run.id }, [run.id.slice(0, 8)]),
        ]),
        el("td", { class: "path", "data-label": "File", "data-field": "file_path" }, [run.file_path]),
        el("td", { "data-label": "Type", "data-field": "record_type" }, [run.record_type]),
        el("td", { "data-label": "Status" }, [badge(run.status)]),
        el("td", { "data-label": "Created", "data-field": "created_at" }, [timeNode(run.created_at)]),
        el("td", { class: "num", "data-label": "Duration", "data-field": "total_duration" }, [
          fmtDuration(run.total_duration),
        ]),
        el("td", { class: "msg", "data-label": "Error", "data-field": "error_message" }, msg),
      ]);
    }

    function upsert(run) {
      if (!tbody || !run) return;
      const existing = tbody.querySelector('tr[data-run-id="' + CSS.escape(run.id) + '"]');
      if (existing) {
        if (matches(run)) existing.replaceWith(buildRow(run));
        else existing.remove();
      } else if (firstPage && !q && matches(run)) {
        // Newest first, as the list's default sort: before the first row created earlier.
        const created = run.created_at ? Date.parse(run.created_at) : -Infinity;
        const rows = Array.from(tbody.rows);
        const before = rows.find((r) => !r.dataset.createdAt || Date.parse(r.dataset.createdAt) < created);
        if (!before && rows.length >= pageSize) return;
        const row = buildRow(run);
        row.classList.add("fresh");
        tbody.insertBefore(row, before || null);
        while (tbody.rows.length > pageSize) tbody.deleteRow(-1);
      }
      if (empty) empty.hidden = tbody.rows.length > 0;
    }

    function remove(runId) {
      const row = tbody && tbody.querySelector('tr[data-run-id="' + CSS.escape(runId) + '"]');
      if (row) row.remove();
      if (empty && tbody) empty.hidden = tbody.rows.length > 0;
    }

    const refreshOverview = debounced(
      async () => swap(await fetchDocument("/dashboard/overview"), "#overview"),
      700,
      3000,
    );
    async function refreshAll() {
      const doc = await fetchDocument(location.href);
      swap(doc, "#overview");
      swap(doc, "#runs tbody");
      if (empty && tbody) empty.hidden = tbody.rows.length > 0;
    }

    connect(
      "/api/v1/events",
      (kind, data) => {
        if (kind === "reset") {
          refreshAll();
          return;
        }
        if (kind === "run_deleted") remove(data.run_id);
        else if (data.run) upsert(data.run);
        refreshOverview();
      },
      refreshAll,
    );
  }

  // --- run page ---------------------------------------------------------------------------------
  function runPage() {
    const runId = body.dataset.runId;
    const refresh = debounced(async () => swap(await fetchDocument(location.pathname), "#run-live"), 300, 1500);

    function showRun(run) {
      const head = document.querySelector(".run-head");
      if (!head) return;
      const old = head.querySelector("h1 [data-field=status]");
      if (old) old.replaceWith(badge(run.status));
      const set = (field, node) => {
        const dd = head.querySelector('dd[data-field="' + field + '"]');
        if (dd) dd.replaceChildren(node);
      };
      set("updated_at", timeNode(run.updated_at));
      set("completed_at", timeNode(run.completed_at));
      set("total_duration", fmtDuration(run.total_duration));
      set("success", run.success === null ? "—" : run.success ? "yes" : "no");
    }

    connect(
      "/api/v1/migrations/" + encodeURIComponent(runId) + "/events",
      (kind, data) => {
        if (kind === "run_deleted") {
          const head = document.querySelector(".run-head h1");
          if (head) head.append(el("span", { class: "badge s-other" }, ["deleted"]));
          return;
        }
        if (data.run) showRun(data.run);
        refresh();
      },
      refresh,
    );
  }

  if (page === "index") indexPage();
  else if (page === "run") runPage();
})();
