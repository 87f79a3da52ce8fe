// stream_am live dashboard: reads /history and /models/{name}/history, then follows the model's
// Server-Sent Events stream (read with fetch(), so that the API key travels in a header, never in a URL).
"use strict";
(() => {
  const KEY_STORE = "stream_am.api_key";
  const MAX_POINTS = 5000; // the page thins its copy like the server does
  const MARK_COLORS = { drift: "#c0392b", forget: "#d68910" };
  const $ = (id) => document.getElementById(id);
  const fmt = new Intl.NumberFormat("en-US");
  const view = { name: null, abort: null, seq: 0, points: [], marks: [], status: null, window: 0, charts: {} };
  let config = { reads_need_key: false, window: 0 };

  class AuthError extends Error {}

  function headers() {
    const key = sessionStorage.getItem(KEY_STORE);
    return key ? { Authorization: `Bearer ${key}` } : {};
  }

  async function getJSON(url, signal) {
    const response = await fetch(url, { headers: headers(), signal, cache: "no-store" });
    if (response.status === 401) throw new AuthError(url);
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return response.json();
  }

  function say(text) {
    $("message").textContent = text;
    $("message").hidden = !text;
  }

  function setConn(state, text) {
    $("conn").dataset.state = state;
    $("conn").textContent = text;
  }

  function askKey(refused) {
    if (view.abort) view.abort.abort();
    sessionStorage.removeItem(KEY_STORE);
    $("main").hidden = true;
    $("picker").hidden = true;
    $("keyform").hidden = false;
    $("keyerror").hidden = !refused;
    setConn("offline", "API key needed");
    $("key").focus();
  }

  $("keyform").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORE, $("key").value);
    $("key").value = "";
    $("keyform").hidden = true;
    start();
  });

  $("model").addEventListener("change", () => select($("model").value));

  async function start() {
    try {
      config = await getJSON("/dashboard/config");
      if (config.reads_need_key && !sessionStorage.getItem(KEY_STORE)) return askKey(false);
      const index = await getJSON("/history");
      say(index.models.length ? "" : "No model is served yet: create one with POST /models.");
      fillPicker(index.models.map((m) => m.name));
      $("picker").hidden = false;
      $("main").hidden = index.models.length === 0;
      const wanted = decodeURIComponent(location.hash.slice(1));
      const names = index.models.map((m) => m.name);
      const name = names.includes(wanted) ? wanted : names.includes("default") ? "default" : names[0];
      if (name !== undefined && name !== view.name) await select(name);
    } catch (err) {
      if (err instanceof AuthError) return askKey(true);
      say(`Cannot reach the server (${err.message}); retrying.`);
      setConn("offline", "offline");
      setTimeout(start, 2000);
    }
  }

  function fillPicker(names) {
    const picker = $("model");
    const current = [...picker.options].map((o) => o.value);
    if (current.join("\n") === names.join("\n")) return;
    picker.replaceChildren(...names.map((n) => new Option(n, n)));
    if (view.name) picker.value = view.name;
  }

  async function select(name) {
    if (view.abort) view.abort.abort();
    const abort = new AbortController();
    Object.assign(view, { name, abort, seq: 0, points: [], marks: [], status: null });
    $("model").value = name;
    history.replaceState(null, "", `#${encodeURIComponent(name)}`);
    try {
      const data = await getJSON(`/models/${encodeURIComponent(name)}/history`, abort.signal);
      apply(data);
    } catch (err) {
      if (abort.signal.aborted) return;
      if (err instanceof AuthError) return askKey(true);
      say(`Model ${name}: ${err.message}`);
    }
    follow(name, abort.signal);
  }

  // -- the push channel -------------------------------------------------------------------------
  async function follow(name, signal) {
    while (!signal.aborted) {
      let wait = 1000;
      try {
        const url = `/models/${encodeURIComponent(name)}/history/stream?since=${view.seq}`;
        const response = await fetch(url, { headers: headers(), signal, cache: "no-store" });
        if (response.status === 401) return askKey(true);
        if (response.status === 404) {
          say(`Model ${name} is gone.`);
          return start();
        }
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        setConn("live", "live");
        say("");
        await readEvents(response.body, signal);
        wait = 50; // the server ended this stream on time: reconnect at once
      } catch (err) {
        if (signal.aborted) return;
        setConn("offline", "reconnecting…");
      }
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  async function readEvents(body, signal) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    while (!signal.aborted) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = "message";
        let data = "";
        for (const line of frame.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).trim();
        }
        if (event === "update") apply(JSON.parse(data));
      }
    }
  }

  // -- state and drawing ------------------------------------------------------------------------
  function apply(data) {
    const fresh = data.points.filter((p) => p.seq > view.seq);
    view.points.push(...fresh);
    if (view.points.length > MAX_POINTS) {
      const half = Math.floor(view.points.length / 2);
      view.points = view.points.slice(0, half).filter((_, i) => i % 2 === 0).concat(view.points.slice(half));
    }
    const seen = new Set(view.marks.map((m) => m.seq));
    view.marks.push(...data.marks.filter((m) => !seen.has(m.seq)));
    view.seq = Math.max(view.seq, data.seq);
    view.window = data.window;
    const kindChanged = !view.status || view.status.classifier !== data.status.classifier;
    view.status = data.status;
    if (kindChanged || !view.charts.metric) build();
    draw();
  }

  function metricNames() {
    return view.status.classifier ? ["accuracy"] : ["mae", "rmse"];
  }

  function build() {
    for (const chart of Object.values(view.charts)) chart.destroy();
    const width = Math.max(320, $("chart-metric").clientWidth || 800);
    const names = metricNames();
    const palette = ["#1f4e79", "#2e86c1", "#117a65", "#48c9b0"];
    const series = [{ label: "samples" }];
    names.forEach((n, i) => {
      series.push({ label: `${n}, last ${fmt.format(view.window)}`, stroke: palette[2 * i], width: 2 });
      series.push({ label: `${n}, cumulative`, stroke: palette[2 * i + 1], width: 1.5, dash: [6, 4] });
    });
    const yLabel = `${view.status.classifier ? "accuracy" : "error"} · window ${fmt.format(view.window)} samples`;
    $("metric-title").textContent = view.status.classifier
      ? "Prequential accuracy (test-then-train)"
      : "Prequential error: MAE and RMSE (test-then-train)";
    view.charts.metric = new uPlot(
      {
        width, height: 320, series,
        scales: { x: { time: false }, y: view.status.classifier ? { range: [0, 1] } : {} },
        axes: [{ label: "samples learned" }, { label: yLabel, size: 60 }],
        hooks: { draw: [drawMarks] },
        legend: { live: false },
      },
      [[], ...series.slice(1).map(() => [])],
      $("chart-metric"),
    );
    view.charts.rate = new uPlot(
      {
        width, height: 220,
        series: [{ label: "time" }, { label: "samples / s", stroke: "#1f4e79", width: 2, fill: "rgba(31,78,121,.08)" }],
        axes: [{}, { label: "samples / s", size: 60 }],
        legend: { live: false },
      },
      [[], []],
      $("chart-rate"),
    );
  }

  function drawMarks(u) {
    const ctx = u.ctx;
    const top = u.bbox.top;
    const bottom = top + u.bbox.height;
    ctx.save();
    ctx.lineWidth = 2 * devicePixelRatio;
    ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
    ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
    for (const mark of view.marks) {
      const x = u.valToPos(mark.samples, "x", true);
      if (!Number.isFinite(x) || x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
      ctx.strokeStyle = ctx.fillStyle = MARK_COLORS[mark.kind] || "#555";
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, bottom);
      ctx.stroke();
      ctx.fillText(mark.kind, x + 3 * devicePixelRatio, top + 12 * devicePixelRatio);
    }
    ctx.restore();
  }

  function draw() {
    const pts = view.points;
    const names = metricNames();
    const columns = [pts.map((p) => p.samples)];
    for (const n of names) {
      columns.push(pts.map((p) => p.window[n] ?? null));
      columns.push(pts.map((p) => p.cumulative[n] ?? null));
    }
    view.charts.metric.setData(columns);
    const rate = pts.slice(1).map((p, i) => {
      const dt = p.t - pts[i].t;
      return dt > 0 ? (p.samples - pts[i].samples) / dt : null;
    });
    view.charts.rate.setData([pts.slice(1).map((p) => p.t), rate]);
    $("chart-metric").dataset.points = String(pts.length);
    $("chart-metric").dataset.marks = String(view.marks.length);
    drawCounters(view.status);
    drawMarkList();
    drawClasses(view.status);
  }

  function number(value, digits) {
    return value === null || value === undefined ? "–" : value.toFixed(digits);
  }

  function ago(t) {
    const s = Math.max(0, Date.now() / 1000 - t);
    if (s < 90) return `${Math.round(s)} s ago`;
    if (s < 5400) return `${Math.round(s / 60)} min ago`;
    return `${(s / 3600).toFixed(1)} h ago`;
  }

  function drawCounters(s) {
    $("c-samples").textContent = fmt.format(s.samples_seen);
    $("c-rate").textContent = number(s.samples_per_s, 1);
    const names = metricNames();
    $("c-metric-label").textContent = `${names.join(" / ")} (last ${fmt.format(view.window)})`;
    $("c-metric").textContent = names.map((n) => number(s.window_metrics[n], 3)).join(" / ");
    const lat = s.predict_latency;
    $("c-latency").textContent = lat.count ? `${number(lat.p50_ms, 1)} / ${number(lat.p99_ms, 1)} ms` : "no predictions";
    $("c-version").textContent = fmt.format(s.model_version);
    const ck = s.last_checkpoint;
    $("c-checkpoint").textContent = ck ? `${ago(ck.t)} · ${fmt.format(ck.samples)} samples` : "none yet";
    $("c-drifts").textContent = `${s.drifts} / ${s.forgets}`;
    $("c-queue").textContent = fmt.format(s.queue_depth);
  }

  function drawMarkList() {
    const items = view.marks.slice(-20).map((m) => {
      const li = document.createElement("li");
      li.className = m.kind;
      li.textContent = `${m.kind} at ${fmt.format(m.samples)} samples · ${new Date(m.t * 1000).toLocaleTimeString()}`;
      return li;
    });
    $("marks").replaceChildren(...items);
  }

  function drawClasses(s) {
    $("classes-panel").hidden = !s.classifier;
    const top = s.classes.slice(0, 30);
    const most = Math.max(1, ...top.map(([, n]) => n));
    const cells = [];
    for (const [label, n] of top) {
      const name = document.createElement("span");
      name.textContent = JSON.stringify(label);
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.style.width = `${(100 * n) / most}%`;
      const count = document.createElement("span");
      count.className = "n";
      count.textContent = fmt.format(n);
      cells.push(name, bar, count);
    }
    $("classes").replaceChildren(...cells);
  }

  window.addEventListener("resize", () => {
    const width = Math.max(320, $("chart-metric").clientWidth);
    for (const chart of Object.values(view.charts)) chart.setSize({ width, height: chart.height });
  });
  setInterval(() => view.name && $("main").hidden === false && start(), 10000); // new or deleted models
  start();
})();
