// The painterly page: plain JavaScript against the HTTP API, no build step.
"use strict";

const $ = (selector) => document.querySelector(selector);
const FINAL = new Set(["done", "failed", "cancelled", "interrupted"]);
let token = localStorage.getItem("painterly-token") || "";
let config = null;
let currentJob = null;
let events = null;

// -- the API ------------------------------------------------------------------------------------

function withToken(url) {
  return token ? `${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}` : url;
}

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (token) headers.set("Authorization", `Bearer ${token}`);
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    $("#token-bar").hidden = false;
    $("#token").focus();
    throw new Error("This server needs a token (enter it above).");
  }
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
    if (response.status === 429) {
      const wait = response.headers.get("Retry-After");
      detail = `The server is busy${wait ? `; try again in about ${wait} s` : ""}.`;
    }
    throw new Error(detail);
  }
  return response;
}

// -- tabs ---------------------------------------------------------------------------------------

function showTab(name) {
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    const selected = tab.id === `tab-${name}`;
    tab.setAttribute("aria-selected", String(selected));
    $(`#${tab.getAttribute("aria-controls")}`).hidden = !selected;
  }
  if (name === "results") loadResults();
  if (name === "fast") loadModels();
}

// -- drop zones ---------------------------------------------------------------------------------

function dropZone(zone, onChange) {
  const input = zone.querySelector("input[type=file]");
  let files = [];
  const set = (list) => {
    files = Array.from(list).filter((f) => f.type.startsWith("image/") || f.type === "");
    if (!input.multiple) files = files.slice(0, 1);
    const thumbs = zone.querySelector(".thumbs");
    thumbs.replaceChildren(...files.map((file) => {
      const img = document.createElement("img");
      img.src = URL.createObjectURL(file);
      img.alt = file.name;
      return img;
    }));
    zone.classList.toggle("filled", files.length > 0);
    onChange(files);
  };
  zone.addEventListener("click", () => input.click());
  zone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } });
  input.addEventListener("click", (e) => e.stopPropagation());
  input.addEventListener("change", () => set(input.files));
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    set(e.dataTransfer.files);
  });
  return () => files;
}

// -- paint: image optimization ------------------------------------------------------------------

let contentFiles = () => [];
let styleFiles = () => [];

function updateStart() {
  $("#start").disabled = !(contentFiles().length && styleFiles().length) || (currentJob && !FINAL.has(currentJob.status));
}

function renderBlends(files) {
  const box = $("#blends");
  box.replaceChildren();
  if (files.length < 2) return;
  files.forEach((file, i) => {
    const label = document.createElement("label");
    const img = document.createElement("img");
    img.src = URL.createObjectURL(file);
    img.alt = "";
    const range = document.createElement("input");
    Object.assign(range, { type: "range", min: "0", max: "1", step: "0.05", value: "1", name: `blend${i}` });
    range.setAttribute("aria-label", `Weight of style ${i + 1}`);
    label.append(img, range);
    box.append(label);
  });
}

function fillSelect(select, choices, value) {
  select.replaceChildren(...choices.map((choice) => new Option(choice, choice, false, choice === value)));
}

// Settings the form builds itself from /api/config; style_blend has its own sliders (renderBlends).
const SPECIAL_FIELDS = new Set(["style_blend"]);
const LABELS = { size: "Size (px)", tv_weight: "Smoothness (TV)", preserve_colors: "Colours", init: "Start from" };
let settingFields = [];

function fieldLabel(field) {
  if (LABELS[field.name]) return LABELS[field.name];
  const words = field.name.replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function settingInput(field) {
  if (field.choices) {
    const select = document.createElement("select");
    fillSelect(select, field.choices, field.default);
    return select;
  }
  const input = document.createElement("input");
  input.type = field.kind === "int" || field.kind === "float" ? "number" : "text";
  if (input.type === "number") {
    input.step = field.kind === "int" ? "1" : "any";
    if (field.minimum != null) input.min = String(field.minimum);
    if (field.maximum != null) input.max = String(field.maximum);
  }
  let value = field.default;
  if (value != null && field.maximum != null && typeof value === "number") value = Math.min(value, field.maximum);
  input.value = value == null ? "" : String(value);
  if (field.optional) input.placeholder = "auto";
  return input;
}

function buildSettingsForm(fields) {
  settingFields = fields.filter((field) => !SPECIAL_FIELDS.has(field.name));
  $("#settings-fields").replaceChildren(...settingFields.map((field) => {
    const label = document.createElement("label");
    const input = settingInput(field);
    input.name = field.name;
    label.title = field.help;
    label.append(`${fieldLabel(field)} `, input);
    return label;
  }));
}

async function loadConfig() {
  config = await (await api("/api/config")).json();
  buildSettingsForm(config.fields);
  const fast = $("#fast-form");
  fillSelect(fast.preserve_colors, config.stylize.preserve_colors, "none");
  fast.size.max = config.limits.max_size;
}

function formatLoss(x) {
  return x >= 1e4 || (x > 0 && x < 1e-2) ? x.toExponential(2) : x.toFixed(2);
}

function formatSeconds(s) {
  if (s == null) return "…";
  if (s < 60) return `${Math.round(s)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function showJob(job) {
  currentJob = job;
  const status = $("#paint-status");
  const bar = $("#paint-progress");
  const p = job.progress;
  bar.hidden = false;
  if (job.status === "queued") {
    bar.removeAttribute("value");
    status.textContent = job.queue_position ? `Waiting in the queue (position ${job.queue_position})…` : "Waiting in the queue…";
  } else if (job.status === "running") {
    if (p) {
      bar.value = p.fraction;
      const scale = p.scales > 1 ? ` · scale ${p.scale}/${p.scales}` : "";
      const total = p.losses && p.losses.total != null ? ` · loss ${formatLoss(p.losses.total)}` : "";
      status.textContent = `Iteration ${p.step}/${p.total_steps}${scale}${total} · ${formatSeconds(p.eta)} left`;
    } else {
      bar.removeAttribute("value");
      status.textContent = "Loading the network…";
    }
  } else if (job.status === "done") {
    bar.value = 1;
    status.textContent = `Done: ${job.width}×${job.height} px` + (p ? ` in ${formatSeconds(p.elapsed)}` : "") + ".";
  } else {
    status.textContent = job.status === "failed" ? `Failed: ${job.error}` : `Stopped (${job.status}); the best image so far is kept.`;
  }
  showLosses(p && p.losses);
  $("#cancel").hidden = FINAL.has(job.status);
  const result = job.urls.result;
  const download = $("#download");
  download.hidden = !result;
  if (result) {
    download.href = withToken(`${result}?download=1`);
    showImage($("#paint-image"), withToken(result));
  }
  updateStart();
}

// Whatever loss terms the painter reports (content, style, tv, ... and total), in the order they came.
function showLosses(losses) {
  const line = $("#paint-losses");
  if (!losses) { line.textContent = ""; return; }
  line.textContent = Object.entries(losses)
    .filter(([name]) => name !== "total")
    .map(([name, value]) => `${name.replace(/_/g, " ")} ${formatLoss(value)}`)
    .join(" · ");
}

function showImage(img, src) {
  img.src = src;
  img.hidden = false;
  const placeholder = img.parentElement.querySelector(".placeholder");
  if (placeholder) placeholder.hidden = true;
}

function follow(job) {
  if (events) events.close();
  showJob(job);
  events = new EventSource(withToken(job.urls.events));
  const handle = (e) => {
    const update = JSON.parse(e.data);
    if (update.preview) showImage($("#paint-image"), update.preview);
    showJob(update);
    if (e.type === "end") {
      events.close();
      events = null;
    }
  };
  events.addEventListener("progress", handle);
  events.addEventListener("end", handle);
  events.onerror = () => {
    // The browser reconnects by itself; if the stream is gone for good, fall back to polling once.
    if (events && events.readyState === EventSource.CLOSED) {
      api(job.urls.self).then((r) => r.json()).then(showJob).catch(() => {});
    }
  };
}

async function startPainting(event) {
  event.preventDefault();
  const form = $("#paint-form");
  $("#paint-error").textContent = "";
  const data = new FormData();
  data.append("content", contentFiles()[0]);
  for (const file of styleFiles()) data.append("style", file);
  for (const field of settingFields) {
    const value = form.elements[field.name].value;
    if (value !== "") data.append(field.name, value);
  }
  const blends = Array.from(document.querySelectorAll("#blends input")).map((r) => r.value);
  if (blends.length) data.append("style_blend", blends.join(","));
  $("#start").disabled = true;
  $("#download").hidden = true;
  try {
    const job = await (await api("/api/jobs", { method: "POST", body: data })).json();
    follow(job);
  } catch (error) {
    $("#paint-error").textContent = error.message;
    updateStart();
  }
}

async function cancelJob() {
  if (!currentJob) return;
  try {
    showJob(await (await api(currentJob.urls.cancel, { method: "POST" })).json());
  } catch (error) {
    $("#paint-error").textContent = error.message;
  }
}

// -- fast stylization ---------------------------------------------------------------------------

let fastFiles = () => [];

async function loadModels() {
  try {
    const { models } = await (await api("/api/models")).json();
    const select = $("#fast-model");
    const previous = select.value;
    select.replaceChildren(...models.map((m) => new Option(m.style ? `${m.name} (${m.style})` : m.name, m.name)));
    if (previous) select.value = previous;
    $("#fast-none").hidden = models.length > 0;
    select.disabled = models.length === 0;
  } catch (error) {
    $("#fast-error").textContent = error.message;
  }
  $("#stylize").disabled = !(fastFiles().length && $("#fast-model").value);
}

async function stylize(event) {
  event.preventDefault();
  const form = $("#fast-form");
  $("#fast-error").textContent = "";
  const data = new FormData();
  data.append("image", fastFiles()[0]);
  data.append("model", form.model.value);
  if (form.size.value) data.append("size", form.size.value);
  data.append("preserve_colors", form.preserve_colors.value);
  $("#stylize").disabled = true;
  $("#fast-status").textContent = "Stylizing…";
  const started = performance.now();
  try {
    const response = await api("/api/stylize", { method: "POST", body: data });
    const blob = await response.blob();
    showImage($("#fast-image"), URL.createObjectURL(blob));
    const job = response.headers.get("X-Painterly-Job");
    const download = $("#fast-download");
    download.href = withToken(`/api/jobs/${job}/result?download=1`);
    download.hidden = false;
    $("#fast-status").textContent = `Done in ${((performance.now() - started) / 1000).toFixed(1)} s.`;
  } catch (error) {
    $("#fast-status").textContent = "";
    $("#fast-error").textContent = error.message;
  }
  $("#stylize").disabled = false;
}

// -- recent results -----------------------------------------------------------------------------

async function loadResults() {
  try {
    const { jobs } = await (await api("/api/jobs?limit=48")).json();
    $("#results").replaceChildren(...jobs.map(resultCard));
    $("#results-empty").hidden = jobs.length > 0;
  } catch (error) {
    $("#results-empty").hidden = false;
    $("#results-empty").textContent = error.message;
  }
}

function resultCard(job) {
  const item = document.createElement("li");
  const thumb = document.createElement("div");
  thumb.className = "thumb";
  if (job.urls.result) {
    const img = document.createElement("img");
    img.loading = "lazy";
    img.src = withToken(job.urls.result);
    img.alt = `Result ${job.id}`;
    thumb.append(img);
  } else {
    thumb.textContent = job.status;
  }
  const meta = document.createElement("div");
  meta.className = "meta";
  const what = document.createElement("span");
  const when = new Date(job.created * 1000).toLocaleString([], { dateStyle: "short", timeStyle: "short" });
  what.append(`${job.kind === "stylize" ? "Fast" : "Paint"} · ${when} · `);
  const status = document.createElement("span");
  status.className = `status-${job.status}`;
  status.textContent = job.status;
  what.append(status);
  meta.append(what);
  if (job.urls.result) {
    const link = document.createElement("a");
    link.href = withToken(`${job.urls.result}?download=1`);
    link.textContent = "Save";
    link.setAttribute("download", "");
    meta.append(link);
  }
  item.append(thumb, meta);
  return item;
}

// -- start --------------------------------------------------------------------------------------

function init() {
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    tab.addEventListener("click", () => showTab(tab.id.replace("tab-", "")));
  }
  contentFiles = dropZone($("#content-drop"), updateStart);
  styleFiles = dropZone($("#style-drop"), (files) => { renderBlends(files); updateStart(); });
  fastFiles = dropZone($("#fast-drop"), () => { $("#stylize").disabled = !(fastFiles().length && $("#fast-model").value); });
  $("#paint-form").addEventListener("submit", startPainting);
  $("#fast-form").addEventListener("submit", stylize);
  $("#cancel").addEventListener("click", cancelJob);
  $("#token-bar").addEventListener("submit", (e) => {
    e.preventDefault();
    token = $("#token").value.trim();
    localStorage.setItem("painterly-token", token);
    $("#token-bar").hidden = true;
    loadConfig().catch((error) => { $("#paint-error").textContent = error.message; });
  });
  loadConfig().catch((error) => { $("#paint-error").textContent = error.message; });
}

init();
