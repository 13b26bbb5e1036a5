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
  if (name === "live" || name === "video") loadModelChoices();
  if (name !== "live") stopLive();
}

// -- drop zones ---------------------------------------------------------------------------------

function dropZone(zone, onChange, kind = "image") {
  const input = zone.querySelector("input[type=file]");
  let files = [];
  const set = (list) => {
    files = Array.from(list).filter((f) => f.type.startsWith(`${kind}/`) || f.type === "");
    if (!input.multiple) files = files.slice(0, 1);
    const thumbs = zone.querySelector(".thumbs");
    thumbs.replaceChildren(...files.map((file) => {
      if (kind !== "image") {
        const name = document.createElement("span");
        name.textContent = `${file.name} (${(file.size / 1048576).toFixed(1)} MB)`;
        return name;
      }
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
const LABELS = {
  size: "Size (px)", tv_weight: "Smoothness (TV)", preserve_colors: "Colours", init: "Start from", time_limit: "Time",
};
let settingFields = [];

function fieldLabel(field) {
  if (LABELS[field.name]) return LABELS[field.name];
  const words = field.name.replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function settingInput(field) {
  if (field.suggestions) {
    // A few named values (the time limit's "about 1 minute / 3 / 10"), or none.
    const select = document.createElement("select");
    select.append(new Option(field.optional ? "no limit" : "default", ""));
    for (const item of field.suggestions) {
      select.append(new Option(item.label, String(item.value), false, item.value === field.default));
    }
    return select;
  }
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
  const video = config.video || { available: false };
  $("#tab-video").hidden = !video.available;
  if (video.available) {
    $("#video-form").size.max = video.max_size;
    $("#video-limits").textContent = `Up to ${video.max_seconds} s and ${Math.round(video.max_upload_bytes / 1048576)} MB; the result keeps the sound.`;
  }
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

// -- paint: regions brushed on the photo ----------------------------------------------------------
// One transparent layer per style after the first, at the photo's shape (at most REGION_SIDE px):
// brushing with style k paints layer k and wipes the others there; the eraser wipes them all (back
// to style 1). On submit each style's mask goes as a PNG: layer k on black for style k, and for
// style 1 white with every layer cut out (transparent counts as outside on the server).

const REGION_SIDE = 512;
const REGION_COLOURS = ["#3b82f6", "#f97316", "#10b981", "#e11d48", "#a855f7", "#eab308", "#14b8a6", "#64748b"];
const regions = { photo: null, layers: [], style: 0, erasing: false, painted: false, last: null };

function newLayer(width, height) {
  const layer = document.createElement("canvas");
  layer.width = width;
  layer.height = height;
  return layer;
}

async function setupRegions() {
  const box = $("#regions");
  const photo = contentFiles()[0];
  const styles = styleFiles().length;
  box.hidden = !(photo && styles >= 2);
  if (box.hidden) return;
  if (regions.photo?.file !== photo) {
    const bitmap = await createImageBitmap(photo);
    const scale = Math.min(1, REGION_SIDE / Math.max(bitmap.width, bitmap.height));
    regions.photo = { file: photo, bitmap, width: Math.max(1, Math.round(bitmap.width * scale)), height: Math.max(1, Math.round(bitmap.height * scale)) };
    regions.layers = [];
    regions.painted = false;
  }
  const { width, height } = regions.photo;
  while (regions.layers.length < styles - 1) regions.layers.push(newLayer(width, height));
  regions.layers.length = styles - 1;
  regions.style = Math.min(regions.style, styles - 1);
  $("#region-styles").replaceChildren(...Array.from({ length: styles }, (_, i) => {
    const button = document.createElement("button");
    button.type = "button";
    button.setAttribute("role", "radio");
    button.dataset.style = String(i);
    const swatch = document.createElement("span");
    swatch.className = "region-swatch";
    if (i === 0) swatch.style.border = "1px solid currentColor";  // the rest shows as the photo itself
    else swatch.style.background = REGION_COLOURS[i % REGION_COLOURS.length];
    button.append(swatch, i === 0 ? "Style 1 (the rest)" : `Style ${i + 1}`);
    button.addEventListener("click", () => { regions.style = i; regions.erasing = false; markRegionTools(); });
    return button;
  }));
  const canvas = $("#region-canvas");
  canvas.width = width;
  canvas.height = height;
  markRegionTools();
  drawRegions();
}

function markRegionTools() {
  for (const button of document.querySelectorAll("#region-styles button")) {
    button.setAttribute("aria-checked", String(!regions.erasing && Number(button.dataset.style) === regions.style));
  }
  $("#region-eraser").setAttribute("aria-pressed", String(regions.erasing));
}

// The photo with each style's region tinted in its colour (style 1, the rest, shows as the photo).
function drawRegions() {
  if (!regions.photo) return;
  const canvas = $("#region-canvas");
  const context = canvas.getContext("2d");
  context.globalCompositeOperation = "source-over";
  context.globalAlpha = 1;
  context.drawImage(regions.photo.bitmap, 0, 0, canvas.width, canvas.height);
  regions.layers.forEach((layer, i) => {
    const tint = newLayer(layer.width, layer.height);
    const t = tint.getContext("2d");
    t.drawImage(layer, 0, 0);
    t.globalCompositeOperation = "source-in";
    t.fillStyle = REGION_COLOURS[(i + 1) % REGION_COLOURS.length];
    t.fillRect(0, 0, tint.width, tint.height);
    context.globalAlpha = 0.55;
    context.drawImage(tint, 0, 0);
  });
  context.globalAlpha = 1;
}

function regionPoint(event) {
  const canvas = $("#region-canvas");
  const box = canvas.getBoundingClientRect();
  return { x: (event.clientX - box.left) * canvas.width / box.width, y: (event.clientY - box.top) * canvas.height / box.height };
}

function brushStroke(from, to) {
  const canvas = $("#region-canvas");
  const width = Number($("#region-brush").value) * canvas.width / Math.max(1, canvas.getBoundingClientRect().width);
  regions.layers.forEach((layer, i) => {
    const context = layer.getContext("2d");
    const paints = !regions.erasing && i + 1 === regions.style;
    context.globalCompositeOperation = paints ? "source-over" : "destination-out";
    context.strokeStyle = "#fff";
    context.lineWidth = width;
    context.lineCap = "round";
    context.lineJoin = "round";
    context.beginPath();
    context.moveTo(from.x, from.y);
    context.lineTo(to.x + 0.01, to.y);
    context.stroke();
  });
  if (!regions.erasing && regions.style > 0) regions.painted = true;
  drawRegions();
}

function clearRegions() {
  for (const layer of regions.layers) layer.getContext("2d").clearRect(0, 0, layer.width, layer.height);
  regions.painted = false;
  drawRegions();
}

function canvasBlob(canvas) {
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

// The masks to send, one per style, or none when nothing was brushed (every style then paints everywhere).
async function regionMasks() {
  if ($("#regions").hidden || !regions.painted || !regions.photo) return [];
  const { width, height } = regions.photo;
  const first = newLayer(width, height);
  const context = first.getContext("2d");
  context.fillStyle = "#fff";
  context.fillRect(0, 0, width, height);
  context.globalCompositeOperation = "destination-out";
  for (const layer of regions.layers) context.drawImage(layer, 0, 0);
  const masks = [await canvasBlob(first)];
  for (const layer of regions.layers) {
    const mask = newLayer(width, height);
    const c = mask.getContext("2d");
    c.fillStyle = "#000";
    c.fillRect(0, 0, width, height);
    c.drawImage(layer, 0, 0);
    masks.push(await canvasBlob(mask));
  }
  return masks;
}

function initRegions() {
  const canvas = $("#region-canvas");
  canvas.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    regions.last = regionPoint(event);
    brushStroke(regions.last, regions.last);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!regions.last) return;
    const point = regionPoint(event);
    brushStroke(regions.last, point);
    regions.last = point;
  });
  for (const name of ["pointerup", "pointercancel"]) canvas.addEventListener(name, () => { regions.last = null; });
  $("#region-eraser").addEventListener("click", () => { regions.erasing = !regions.erasing; markRegionTools(); });
  $("#region-clear").addEventListener("click", clearRegions);
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
  (await regionMasks()).forEach((mask, i) => data.append("mask", mask, `region${i + 1}.png`));
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
    modelList = models;
    renderFastBlend();
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
  data.append("strength", form.strength.value);
  const mix = styleWeights($("#fast-blend")).map(({ style, weight }) => `${style}:${weight}`);
  if (mix.length > 1) data.append("style_mix", mix.join(","));
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

// -- models for the live and video tabs ---------------------------------------------------------

const KINDS = { stylize: "Fast", transfer: "Paint", video: "Video" };
let modelList = [];

async function loadModelChoices() {
  try {
    const { models } = await (await api("/api/models")).json();
    modelList = models;
    for (const select of [$("#live-model"), $("#video-model")]) {
      const previous = select.value;
      select.replaceChildren(...models.map((m) => new Option(m.style ? `${m.name} (${m.style})` : m.name, m.name)));
      if (previous) select.value = previous;
      select.disabled = models.length === 0;
    }
    $("#live-none").hidden = models.length > 0;
    $("#live-start").disabled = models.length === 0;
    renderLiveBlend();
    updateVideoStart();
  } catch (error) {
    $("#live-error").textContent = error.message;
  }
}

// Blend sliders (Fast and Live tabs) only for models trained on several styles (an entry listing its
// ``styles``): one per style, in the model's order. Kept as they are while the same model stays chosen.
function renderStyleSliders(box, modelName, onChange) {
  const entry = modelList.find((m) => m.name === modelName);
  const styles = entry && Array.isArray(entry.styles) ? entry.styles.map(String) : [];
  const key = styles.length < 2 ? "" : `${modelName}\n${styles.join("\n")}`;
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  box.hidden = !key;
  box.replaceChildren(...(key ? styles.map((style) => {
    const label = document.createElement("label");
    const range = document.createElement("input");
    Object.assign(range, { type: "range", min: "0", max: "1", step: "0.05", value: "1" });
    range.dataset.style = style;
    range.setAttribute("aria-label", `Weight of the style ${style}`);
    if (onChange) range.addEventListener("change", onChange);
    label.append(style, range);
    return label;
  }) : []));
}

// The sliders' values: [{style, weight}], empty for a single-style model.
function styleWeights(box) {
  return Array.from(box.querySelectorAll("input")).map((r) => ({ style: r.dataset.style, weight: Number(r.value) }));
}

function renderLiveBlend() {
  renderStyleSliders($("#live-blend"), $("#live-model").value, sendLiveConfig);
}

function renderFastBlend() {
  renderStyleSliders($("#fast-blend"), $("#fast-model").value);
}

// -- live: the camera, painted frame by frame -------------------------------------------------------

const live = {
  socket: null, stream: null, running: false, inFlight: false, sentAt: 0,
  latencies: [], arrivals: [], recorder: null, recordTimer: null,
};

function liveSocketUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return withToken(`${scheme}//${location.host}/api/live`);
}

async function startLive() {
  $("#live-error").textContent = "";
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    $("#live-error").textContent = "The camera needs a secure page: open this server on localhost or over https://.";
    return;
  }
  const lines = Number($("#live-size").value);
  try {
    live.stream = await navigator.mediaDevices.getUserMedia({
      video: { height: { ideal: lines }, width: { ideal: Math.round((lines * 4) / 3) }, facingMode: "user" },
      audio: false,
    });
  } catch (error) {
    $("#live-error").textContent = `No camera: ${error.message || error.name}`;
    return;
  }
  const camera = $("#live-camera");
  camera.srcObject = live.stream;
  await camera.play().catch(() => {});
  live.running = true;
  live.inFlight = false;
  live.latencies = [];
  live.arrivals = [];
  const socket = new WebSocket(liveSocketUrl());
  socket.binaryType = "blob";
  live.socket = socket;
  socket.onmessage = (event) => onLiveMessage(socket, event);
  socket.onclose = (event) => {
    if (live.socket !== socket) return;
    const reason = event.code === 1000 || event.code === 1001 ? "" : ` (${event.reason || `code ${event.code}`})`;
    if (live.running) $("#live-error").textContent = `The connection closed${reason}.`;
    stopLive();
  };
  $("#live-start").textContent = "Stop";
}

function stopLive() {
  if (live.recorder && live.recorder.state !== "inactive") live.recorder.stop();
  live.running = false;
  if (live.socket) {
    const socket = live.socket;
    live.socket = null;
    socket.close(1000);
  }
  if (live.stream) live.stream.getTracks().forEach((track) => track.stop());
  live.stream = null;
  $("#live-start").textContent = "Start camera";
  $("#live-record").disabled = true;
}

function sendLiveConfig() {
  if (!live.socket || live.socket.readyState !== WebSocket.OPEN) return;
  const message = { type: "config", model: $("#live-model").value, temporal_strength: Number($("#live-strength").value) };
  const blend = styleWeights($("#live-blend")).map(({ weight }) => weight);
  if (blend.length > 1) message.blend = blend;
  live.socket.send(JSON.stringify(message));
}

// One frame in flight: the next is captured when the answer to the last one arrives.
function sendLiveFrame() {
  const socket = live.socket;
  if (!live.running || live.inFlight || !socket || socket.readyState !== WebSocket.OPEN) return;
  const camera = $("#live-camera");
  if (camera.readyState < 2 || !camera.videoWidth) {
    setTimeout(sendLiveFrame, 50);
    return;
  }
  const lines = Number($("#live-size").value);
  const height = Math.min(lines, camera.videoHeight);
  const width = Math.round((height * camera.videoWidth) / camera.videoHeight / 2) * 2;
  const capture = $("#live-capture");
  if (capture.width !== width || capture.height !== height) Object.assign(capture, { width, height });
  capture.getContext("2d").drawImage(camera, 0, 0, width, height);
  live.inFlight = true;
  capture.toBlob((blob) => {
    if (!blob || live.socket !== socket || socket.readyState !== WebSocket.OPEN) { live.inFlight = false; return; }
    live.sentAt = performance.now();
    socket.send(blob);
  }, "image/jpeg", 0.8);
}

async function onLiveMessage(socket, event) {
  if (live.socket !== socket) return;
  if (typeof event.data === "string") {
    const message = JSON.parse(event.data);
    if (message.type === "ready") {
      if (!$("#live-model").value && message.model) $("#live-model").value = message.model;
      sendLiveConfig();
      sendLiveFrame();
    } else if (message.type === "error") {
      $("#live-error").textContent = message.detail;
      live.inFlight = false;
      setTimeout(sendLiveFrame, 200);
    } else if (message.type === "dropped") {
      live.inFlight = false;
      setTimeout(sendLiveFrame, message.reason === "rate" ? 40 : 0);
    } else if (message.type === "config") {
      $("#live-error").textContent = "";
    }
    return;
  }
  const now = performance.now();
  live.inFlight = false;
  live.latencies.push(now - live.sentAt);
  if (live.latencies.length > 30) live.latencies.shift();
  live.arrivals.push(now);
  while (live.arrivals.length && now - live.arrivals[0] > 2000) live.arrivals.shift();
  sendLiveFrame(); // the next frame goes out while this one is drawn
  const bitmap = await createImageBitmap(event.data);
  const canvas = $("#live-canvas");
  if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
    Object.assign(canvas, { width: bitmap.width, height: bitmap.height });
  }
  canvas.getContext("2d").drawImage(bitmap, 0, 0);
  bitmap.close();
  canvas.hidden = false;
  $("#live-placeholder").hidden = true;
  $("#live-snapshot").disabled = false;
  $("#live-record").disabled = !(window.MediaRecorder && canvas.captureStream);
  showLiveStats(now);
}

function showLiveStats(now) {
  const span = live.arrivals.length > 1 ? (now - live.arrivals[0]) / 1000 : 0;
  const fps = span > 0 ? (live.arrivals.length - 1) / span : 0;
  const sorted = [...live.latencies].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] || 0;
  const stats = $("#live-stats");
  stats.dataset.fps = fps.toFixed(2);
  stats.dataset.latency = median.toFixed(0);
  const canvas = $("#live-canvas");
  stats.textContent = `${fps.toFixed(1)} frames/s · ${median.toFixed(0)} ms latency · ${canvas.width}×${canvas.height}`;
}

function saveBlob(blob, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

function stamp() {
  return new Date().toISOString().slice(0, 19).replace(/[-:]/g, "").replace("T", "-");
}

function snapshot() {
  $("#live-canvas").toBlob((blob) => saveBlob(blob, `painterly-live-${stamp()}.png`), "image/png");
}

// A short WebM of the painted canvas (MediaRecorder), at most RECORD_SECONDS.
const RECORD_SECONDS = 15;

function toggleRecording() {
  const button = $("#live-record");
  if (live.recorder && live.recorder.state === "recording") {
    live.recorder.stop();
    return;
  }
  const type = ["video/webm;codecs=vp9", "video/webm;codecs=vp8", "video/webm"].find((t) => MediaRecorder.isTypeSupported(t));
  const recorder = new MediaRecorder($("#live-canvas").captureStream(30), type ? { mimeType: type } : {});
  const chunks = [];
  const started = performance.now();
  recorder.ondataavailable = (event) => { if (event.data.size) chunks.push(event.data); };
  recorder.onstop = () => {
    clearInterval(live.recordTimer);
    button.classList.remove("recording");
    button.textContent = "Record";
    if (chunks.length) saveBlob(new Blob(chunks, { type: "video/webm" }), `painterly-live-${stamp()}.webm`);
  };
  live.recordTimer = setInterval(() => {
    const seconds = (performance.now() - started) / 1000;
    button.textContent = `Stop (${Math.ceil(RECORD_SECONDS - seconds)} s)`;
    if (seconds >= RECORD_SECONDS && recorder.state === "recording") recorder.stop();
  }, 250);
  recorder.start(1000);
  live.recorder = recorder;
  button.classList.add("recording");
  button.textContent = `Stop (${RECORD_SECONDS} s)`;
}

// -- video jobs ---------------------------------------------------------------------------------

let videoFiles = () => [];
let videoJob = null;
let videoEvents = null;

function updateVideoStart() {
  const busy = videoJob && !FINAL.has(videoJob.status);
  $("#video-start").disabled = !(videoFiles().length && $("#video-model").value) || Boolean(busy);
}

function showVideoJob(job) {
  videoJob = job;
  const p = job.progress || {};
  const bar = $("#video-progress");
  const status = $("#video-status");
  bar.hidden = false;
  if (job.status === "queued") {
    bar.removeAttribute("value");
    status.textContent = job.queue_position ? `Waiting in the queue (position ${job.queue_position})…` : "Waiting in the queue…";
  } else if (job.status === "running") {
    if (p.frame) {
      if (p.fraction != null) bar.value = p.fraction; else bar.removeAttribute("value");
      const total = p.total_frames ? `/${p.total_frames}` : "";
      status.textContent = `Frame ${p.frame}${total} · ${p.fps.toFixed(1)} frames/s · ${formatSeconds(p.eta)} left`;
    } else {
      bar.removeAttribute("value");
      status.textContent = "Loading the video…";
    }
  } else if (job.status === "done") {
    bar.value = 1;
    status.textContent = `Done: ${p.frame || "?"} frames, ${job.width}×${job.height} px` + (p.elapsed ? ` in ${formatSeconds(p.elapsed)}` : "") + ".";
  } else {
    status.textContent = job.status === "failed" ? `Failed: ${job.error}` : `Stopped (${job.status}); the frames done so far are kept.`;
  }
  $("#video-cancel").hidden = FINAL.has(job.status);
  const result = job.urls.result;
  const download = $("#video-download");
  download.hidden = !result;
  if (result && FINAL.has(job.status)) {
    download.href = withToken(`${result}?download=1`);
    const player = $("#video-result");
    if (!player.src.includes(job.id)) player.src = withToken(result);
    player.hidden = false;
    $("#video-preview").hidden = true;
  }
  updateVideoStart();
}

function followVideo(job) {
  if (videoEvents) videoEvents.close();
  showVideoJob(job);
  videoEvents = new EventSource(withToken(job.urls.events));
  const handle = (e) => {
    const update = JSON.parse(e.data);
    if (update.preview) {
      showImage($("#video-preview"), update.preview);
      $("#video-result").hidden = true;
    }
    showVideoJob(update);
    if (e.type === "end") {
      videoEvents.close();
      videoEvents = null;
    }
  };
  videoEvents.addEventListener("progress", handle);
  videoEvents.addEventListener("end", handle);
}

async function submitVideo(event) {
  event.preventDefault();
  const form = $("#video-form");
  $("#video-error").textContent = "";
  const data = new FormData();
  data.append("video", videoFiles()[0]);
  data.append("model", form.model.value);
  if (form.size.value) data.append("size", form.size.value);
  data.append("temporal_strength", form.temporal_strength.value);
  $("#video-start").disabled = true;
  $("#video-download").hidden = true;
  $("#video-status").textContent = "Uploading…";
  try {
    followVideo(await (await api("/api/videos", { method: "POST", body: data })).json());
  } catch (error) {
    $("#video-status").textContent = "";
    $("#video-error").textContent = error.message;
    updateVideoStart();
  }
}

async function cancelVideo() {
  if (!videoJob) return;
  try {
    showVideoJob(await (await api(videoJob.urls.cancel, { method: "POST" })).json());
  } catch (error) {
    $("#video-error").textContent = error.message;
  }
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
  if (job.urls.result && job.kind === "video") {
    const video = document.createElement("video");
    Object.assign(video, { src: withToken(job.urls.result), muted: true, controls: true, preload: "metadata" });
    thumb.append(video);
  } else if (job.urls.result) {
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
  what.append(`${KINDS[job.kind] || job.kind} · ${when} · `);
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
  const regionsFailed = (error) => { $("#paint-error").textContent = `cannot show the photo for regions: ${error.message}`; };
  contentFiles = dropZone($("#content-drop"), () => { updateStart(); setupRegions().catch(regionsFailed); });
  styleFiles = dropZone($("#style-drop"), (files) => { renderBlends(files); updateStart(); setupRegions().catch(regionsFailed); });
  initRegions();
  fastFiles = dropZone($("#fast-drop"), () => { $("#stylize").disabled = !(fastFiles().length && $("#fast-model").value); });
  $("#paint-form").addEventListener("submit", startPainting);
  $("#fast-form").addEventListener("submit", stylize);
  $("#fast-model").addEventListener("change", renderFastBlend);
  $("#cancel").addEventListener("click", cancelJob);
  $("#live-start").addEventListener("click", () => (live.running ? stopLive() : startLive()));
  $("#live-snapshot").addEventListener("click", snapshot);
  $("#live-record").addEventListener("click", toggleRecording);
  $("#live-model").addEventListener("change", () => { renderLiveBlend(); sendLiveConfig(); });
  $("#live-strength").addEventListener("change", sendLiveConfig);
  $("#live-size").addEventListener("change", () => { if (live.running) { stopLive(); startLive(); } });
  $("#live-form").addEventListener("submit", (e) => e.preventDefault());
  document.addEventListener("visibilitychange", () => { if (document.hidden && live.running) stopLive(); });
  videoFiles = dropZone($("#video-drop"), updateVideoStart, "video");
  $("#video-model").addEventListener("change", updateVideoStart);
  $("#video-form").addEventListener("submit", submitVideo);
  $("#video-cancel").addEventListener("click", cancelVideo);
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
