// veil review: the page. It shows what the server sends and asks the server
// for every change; veil's library decides, renders and verifies.
"use strict";

const S = {
  csrf: "", batch: null, filter: "all", search: "",
  file: null, view: "edit", selected: null, frame: 0, frameData: null,
  tool: null, drag: null, polling: null, zoom: 1,
};
const ZOOM_STEP = 1.5;
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST",
    headers: { "content-type": "application/json", "x-veil-csrf": S.csrf },
    body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function say(text, error = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", error);
}

async function attempt(work) {
  try {
    await work();
  } catch (e) {
    say(e.message, true);
  }
}

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

// ---- the batch -------------------------------------------------------------

async function showBatch() {
  S.file = null;
  S.batch = await api("/api/files");
  $("file").hidden = true;
  $("batch").hidden = false;
  $("folder").textContent = S.batch.folder;
  renderCounts();
  renderGrid();
  history.replaceState(null, "", "/");
}

function renderCounts() {
  const c = S.batch.counts;
  $("counts").textContent =
    `${c.total} files: ${c.fail} failing, ${c.review} to review, ${c.approved} approved`;
}

async function refreshBatch() {
  // The header's counts (and the grid, when shown next) after a file changed state.
  S.batch = await api("/api/files");
  renderCounts();
}

function wanted(file) {
  if (S.search && !file.name.toLowerCase().includes(S.search)) return false;
  switch (S.filter) {
    case "todo": return !file.approved;
    case "fail": return file.state === "fail" || file.state === "failed";
    case "review": return file.state === "review";
    case "edited": return file.edited;
    case "approved": return file.approved;
    default: return true;
  }
}

function renderGrid() {
  const grid = $("grid");
  const cards = [];
  for (const file of S.batch.files) {
    if (!wanted(file)) continue;
    const card = element("li", { tabindex: "0", "data-id": file.id, "data-state": file.state });
    if (file.state !== "failed") {
      card.append(element("img", { class: "thumb", loading: "lazy", alt: "", src: `/media/${file.id}/thumb?v=${file.renders}` }));
    }
    const meta = element("div", { class: "meta" });
    meta.append(element("div", { class: "name", title: file.name }, file.name));
    meta.append(element("span", { class: `badge ${file.state}` }, file.state.toUpperCase()));
    if (file.approved) meta.append(" ", element("span", { class: "badge approved" }, "approved"));
    if (file.edited) meta.append(" ", element("span", { class: "badge edited" }, "edited"));
    const notes = file.error ? ` ${file.error}` : ` ${file.masks} mask${file.masks === 1 ? "" : "s"}, ${file.review} to review` +
      (file.reviewed ? `, ${reviewedText(file.reviewed)}` : "");
    meta.append(element("span", {}, notes));
    card.append(meta);
    card.addEventListener("click", () => attempt(() => openFile(file.id)));
    card.addEventListener("keydown", (e) => { if (e.key === "Enter") attempt(() => openFile(file.id)); });
    cards.push(card);
  }
  grid.replaceChildren(...cards);
}

// ---- one file --------------------------------------------------------------

async function openFile(id) {
  const file = S.batch.files.find((f) => f.id === id);
  if (file && file.state === "failed") throw new Error(`${file.name}: ${file.error}`);
  S.file = await api(`/api/files/${id}`);
  S.selected = null;
  S.frame = 0;
  S.tool = null;
  S.zoom = 1;
  $("batch").hidden = true;
  $("file").hidden = false;
  const video = S.file.kind === "video";
  $("video-controls").hidden = !video;
  $("timeline").hidden = !video;
  $("mode").hidden = !video;
  $("frame-number").max = String((S.file.frames || 1) - 1);
  $("frame-count").textContent = video ? `of ${S.file.frames}` : "";
  say("");
  await showFrame();
  if (S.file.job && S.file.job.state === "running") watchJob();
}

function updated(data) {
  S.file = data;
  if (S.selected && !S.file.regions.some((r) => r.id === S.selected)) S.selected = null;
}

async function showFrame() {
  const file = S.file;
  if (file.kind === "video") {
    S.frame = Math.max(0, Math.min(S.frame, file.frames - 1));
    const frame = S.frame;
    $("frame-number").value = String(frame);
    const data = await api(`/api/files/${file.id}/frame/${frame}`);
    // Keys step faster than answers come: only the answer for the frame shown now counts.
    if (!S.file || S.file.id !== file.id || S.frame !== frame) return;
    S.frameData = data;
  }
  render();
  if (file.kind === "video" && S.frame + 1 < file.frames) {
    new Image().src = pictureUrl().replace(`/${S.frame}?`, `/${S.frame + 1}?`);  // the next step is ready
  }
}

function pictureUrl() {
  // The original never changes: an edit must not fetch it again. The preview
  // changes with the draft, the output with each render.
  const source = S.view === "edit" ? "original" : S.view;
  const frame = S.file.kind === "video" ? `/${S.frame}` : "";
  const version = { original: "0", preview: `${S.file.version}`, output: `${S.file.renders || 0}` }[source];
  return `/media/${S.file.id}/${source}${frame}?v=${version}`;
}

function render() {
  const file = S.file;
  $("file-name").textContent = file.name;
  const state = $("file-state");
  state.textContent = file.state.toUpperCase() + (file.approved ? ", approved" : "") +
    (file.unapplied ? ", changes not applied" : "");
  state.className = `badge ${file.state}`;
  for (const button of document.querySelectorAll("[data-view]")) {
    button.classList.toggle("on", button.dataset.view === S.view);
  }
  $("draw-box").classList.toggle("on", S.tool === "box");
  $("draw-ellipse").classList.toggle("on", S.tool === "ellipse");
  $("undo").disabled = !file.can_undo;
  $("redo").disabled = !file.can_redo;
  $("approve").disabled = file.unapplied || !["pass", "review"].includes(file.state) || file.approved;
  const url = pictureUrl();
  const picture = $("picture");
  if (picture.getAttribute("src") !== url) picture.src = url;
  picture.alt = `${file.name}, ${S.view}`;
  renderRegions();
  renderFindings();
  renderBulk();
  if (file.kind === "video") renderTimeline();
  renderPeople();  // video.js
  layoutPicture();  // last: the timeline's rows take the stage's height
  renderOverlay();
}

function scale() {
  // Screen pixels per picture pixel: the picture fits the stage, times the zoom.
  const stage = $("stage");
  const fit = Math.min((stage.clientWidth - 16) / S.file.width, (stage.clientHeight - 16) / S.file.height);
  return Math.max(0.05, fit) * S.zoom;
}

function layoutPicture() {
  const picture = $("picture");
  const k = scale();
  picture.style.width = `${Math.round(S.file.width * k)}px`;
  picture.style.height = `${Math.round(S.file.height * k)}px`;
}

function zoomTo(factor, centre) {
  // Zoom by `factor` about `centre` (picture pixels; default: the middle of the view).
  const stage = $("stage");
  const before = scale();
  const middle = centre || [
    (stage.scrollLeft + stage.clientWidth / 2) / before, (stage.scrollTop + stage.clientHeight / 2) / before,
  ];
  S.zoom = factor === 0 ? 1 : Math.min(40, Math.max(1, S.zoom * factor));
  layoutPicture();
  const after = scale();
  stage.scrollLeft = middle[0] * after - stage.clientWidth / 2;
  stage.scrollTop = middle[1] * after - stage.clientHeight / 2;
}

function zoomOnSelected() {
  const region = regionsHere().find((r) => r.id === S.selected);
  if (!region) { say("select a region first"); return; }
  zoomOnto(region.box);
}

function zoomOnto([x1, y1, x2, y2]) {
  const stage = $("stage");
  const fit = scale() / S.zoom;
  // the region about a fifth of the view, and no more than 8 times the fitted size
  const wanted = Math.min(stage.clientWidth / ((x2 - x1) * 5), stage.clientHeight / ((y2 - y1) * 5)) / fit;
  S.zoom = 1;
  zoomTo(Math.min(8, Math.max(1, wanted)), [(x1 + x2) / 2, (y1 + y2) / 2]);
  renderOverlay();
}

function keepSelectedInView() {
  // When zoomed in, scroll the stage so the selected region is on screen.
  if (S.zoom === 1) return;
  const region = regionsHere().find((r) => r.id === S.selected);
  if (!region) return;
  const stage = $("stage");
  const k = scale();
  const [x1, y1, x2, y2] = region.box.map((v) => v * k);
  if (x1 < stage.scrollLeft || x2 > stage.scrollLeft + stage.clientWidth ||
      y1 < stage.scrollTop || y2 > stage.scrollTop + stage.clientHeight) {
    stage.scrollLeft = (x1 + x2) / 2 - stage.clientWidth / 2;
    stage.scrollTop = (y1 + y2) / 2 - stage.clientHeight / 2;
  }
}

function regionsHere() {
  // [{id, decision, box, outline}] of the picture on screen
  if (S.file.kind === "video") return S.frameData && S.frameData.frame === S.frame ? S.frameData.regions : [];
  return S.file.regions.map((r) => ({ id: r.id, decision: r.decision, box: r.box, outline: r.outline }));
}

function shapeFor(outline, box) {
  let node;
  if ("cx" in outline) {
    node = document.createElementNS(SVG, "ellipse");
    for (const key of ["cx", "cy", "rx", "ry"]) node.setAttribute(key, outline[key]);
  } else {
    node = document.createElementNS(SVG, "rect");
    node.setAttribute("x", outline.x); node.setAttribute("y", outline.y);
    node.setAttribute("width", outline.w); node.setAttribute("height", outline.h);
  }
  return node;
}

function rect(box, className) {
  const node = document.createElementNS(SVG, "rect");
  node.setAttribute("x", box[0]); node.setAttribute("y", box[1]);
  node.setAttribute("width", Math.max(1, box[2] - box[0]));
  node.setAttribute("height", Math.max(1, box[3] - box[1]));
  node.setAttribute("class", className);
  return node;
}

function renderOverlay() {
  const svg = $("overlay");
  svg.setAttribute("viewBox", `0 0 ${S.file.width} ${S.file.height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.classList.toggle("drawing", S.tool !== null);
  const nodes = [];
  if (S.view === "edit") {
    for (const region of regionsHere()) {
      const box = S.drag && S.drag.id === region.id ? S.drag.box : region.box;
      const shape = S.drag && S.drag.id === region.id ? rect(box, "") : shapeFor(region.outline, box);
      const selected = region.id === S.selected;
      const picked = S.picked.has(region.id) ? " picked" : "";
      shape.setAttribute("class", `region ${region.decision}${selected ? " selected" : ""}${picked}`);
      shape.dataset.id = region.id;
      nodes.push(shape);
      if (selected) {
        nodes.push(rect(box, "facebox"));
        const size = 10 / scale();  // ten screen pixels at any zoom
        const handle = rect([box[2] - size / 2, box[3] - size / 2, box[2] + size / 2, box[3] + size / 2], "handle");
        handle.dataset.handle = region.id;
        nodes.push(handle);
      }
    }
    for (const finding of S.file.findings) {
      if (!finding.box || finding.severity === "kept") continue;
      if (S.file.kind === "video" && finding.frame !== S.frame) continue;
      nodes.push(rect(finding.box, "finding"));
    }
  }
  for (const finding of (S.file.rejected && S.file.rejected.findings) || []) {
    if (!finding.box || (S.file.kind === "video" && finding.frame !== S.frame)) continue;
    nodes.push(rect(finding.box, "finding rejected"));
  }
  if (S.view === "edit" && S.flash) nodes.push(rect(S.flash, "flash"));
  if (S.drag && S.drag.kind === "draw") nodes.push(rect(S.drag.box, "rubber"));
  if (S.drag && S.drag.kind === "lasso") nodes.push(rect(S.drag.box, "lasso"));
  svg.replaceChildren(...nodes);
}

function renderRegions() {
  const list = $("regions");
  const items = S.file.regions.map((region) => {
    const li = element("li", { "data-id": region.id, title: region.detail });
    if (region.id === S.selected) li.classList.add("selected");
    if (S.picked.has(region.id)) li.classList.add("picked");
    li.append(element("span", { class: region.looked ? "seen" : "seen not", title: region.looked ? "looked at" : "not looked at yet" },
      region.looked ? "\u2713" : "\u00b7"));
    li.append(element("span", { class: "id" }, region.id));
    li.append(element("span", { class: `d-${region.decision}` }, region.decision));
    const what = region.kind === "manual" ? (region.label || "drawn") :
      (region.kind === "text" ? `${region.label}, ` : "") + `score ${region.score}` +
      (region.veil_decided !== region.decision ? `, veil: ${region.veil_decided}` : "");
    li.append(element("span", {}, what));
    const buttons = element("span", { class: "buttons" });
    for (const [decision, title] of [["mask", "m"], ["drop", "x"], ["keep", "v"]]) {
      const button = element("button", { "data-decide": decision, title: `${decision} (${title})` }, decision);
      button.disabled = region.decision === decision;
      buttons.append(button);
    }
    li.append(buttons);
    const why = region.reason ? `kept: ${region.reason}` : region.said;
    if (why) li.append(element("span", { class: "why" }, why));
    if (region.first !== undefined) li.append(element("span", { class: "why" }, `frames ${region.first}-${region.last}`));
    li.addEventListener("click", (e) => {
      const decide = e.target.dataset && e.target.dataset.decide;
      if (!decide && (e.shiftKey || e.ctrlKey || e.metaKey)) { togglePick(region.id); return; }
      select(region.id);
      if (decide) attempt(() => decideSelected(decide));
    });
    return li;
  });
  list.replaceChildren(...groupedItems(items));
}

function renderFindings() {
  const list = $("findings");
  const items = S.file.findings.map((finding) => {
    const where = finding.frame !== null ? `frame ${finding.frame}: ` : "";
    const li = element("li", { class: finding.severity }, `${finding.severity.toUpperCase()} ${where}${finding.message}`);
    li.addEventListener("click", (e) => {
      if (e.target.dataset.maskFinding) attempt(() => maskFinding(finding));
      else attempt(() => goToFinding(finding));
    });
    if (finding.box && finding.severity !== "kept" && !finding.region) {
      li.append(element("button", { "data-mask-finding": "1", title: "Mask what the verifier found here" }, "mask it"));
    }
    return li;
  });
  if (!items.length) items.push(element("li", {}, S.file.state === "unverified" ? "not verified" : "nothing found"));
  for (const note of S.file.not_run) items.push(element("li", {}, `not run: ${note}`));
  const rejected = S.file.rejected;
  if (rejected) {
    // The last Apply was refused: its render failed verification, the output on disk is the old one.
    const head = element("li", { class: "rejected-head" },
      "Not applied: your last Apply failed verification. The output on disk was not changed. " +
      "What the verifier found in that render (dashed red, also in Preview):");
    const found = rejected.findings.map((finding) => {
      const where = finding.frame !== null ? `frame ${finding.frame}: ` : "";
      const li = element("li", { class: "fail rejected" }, `REFUSED ${where}${finding.message}`);
      li.addEventListener("click", () => attempt(() => goToFinding(finding)));
      return li;
    });
    items.unshift(head, ...found, element("li", { class: "rejected-head on-disk" }, "The output on disk, as last applied:"));
  }
  list.replaceChildren(...items);
}

function renderTimeline() {
  const timeline = $("timeline");
  const frames = Math.max(1, S.file.frames);
  const percent = (frame) => `${(100 * frame) / frames}%`;
  const rows = S.file.regions.map((region) => {
    const row = element("div", { class: "row", "data-id": region.id });
    if (region.id === S.selected) row.classList.add("selected");
    row.append(element("span", { class: "id" }, region.id));
    const bar = element("div", { class: "bar" });
    for (const [first, last] of region.spans || []) {
      const span = element("div", { class: `span ${region.decision}` });
      span.style.left = percent(first);
      span.style.width = percent(last - first + 1);
      bar.append(span);
    }
    for (const frame of region.set_frames || []) {
      const tick = element("div", { class: "tick" });
      tick.style.left = percent(frame);
      bar.append(tick);
    }
    const head = element("div", { class: "head" });
    head.style.left = percent(S.frame);
    bar.append(head);
    bar.addEventListener("click", (e) => {
      const box = bar.getBoundingClientRect();
      S.frame = Math.round(((e.clientX - box.left) / box.width) * (frames - 1));
      S.selected = region.id;
      attempt(showFrame);
    });
    row.append(bar);
    return row;
  });
  timeline.replaceChildren(...rows);
}

function select(id) {
  beforeSelect(id);
  S.selected = id;
  const region = S.file.regions.find((r) => r.id === id);
  if (S.file.kind === "video" && region && region.first !== undefined) {
    const here = S.frameData && S.frameData.regions.some((r) => r.id === id);
    if (!here) {
      S.frame = region.first;
      attempt(showFrame);
      return;
    }
  }
  render();
  keepSelectedInView();
  const li = document.querySelector(`#regions li[data-id="${id}"]`);
  if (li) li.scrollIntoView({ block: "nearest" });
}

function stepRegion(by) {
  const regions = S.file.regions;
  if (!regions.length) return;
  const at = regions.findIndex((r) => r.id === S.selected);
  const next = at < 0 ? (by > 0 ? 0 : regions.length - 1) : at + by;
  if (next < 0 || next >= regions.length) { say(next < 0 ? "first region" : "last region"); return; }
  select(regions[next].id);
}

async function editAdding(body) {
  // An edit that adds a region (a split, a followed face): the region it added, if any.
  const before = new Set(S.file.regions.map((r) => r.id));
  await edit(body);
  return S.file.regions.find((r) => !before.has(r.id));
}

async function edit(body) {
  updated(await api(`/api/files/${S.file.id}/edit`, body));
  await showFrame();
  say("saved");
}

async function decideSelected(decision) {
  if (S.picked.size) { await decidePicked(decision); return; }
  if (!S.selected) return;
  if (decision === "keep") {
    openKeep();
    return;
  }
  await edit({ op: "decide", region: S.selected, decision });
}

async function decideAndGoOn(decision) {
  // One key per doubtful region: decide it, then the next one is selected.
  if (S.picked.size) { await decidePicked(decision); return; }
  const id = S.selected;
  if (!id) { say("select a region first (n)"); return; }
  await decideSelected(decision);
  if (S.selected === id) stepRegion(1);
}

const REASON_LETTERS = 3;  // as the server asks (veil.plan.model.REASON_LETTERS)

function openKeep() {
  $("keep-title").textContent = `Keep ${S.selected} visible?`;
  $("keep-reason").value = "";
  $("keep-error").textContent = "";
  $("keep-dialog").hidden = false;
  $("keep-reason").focus();
}

async function submitKeep() {
  const reason = $("keep-reason").value.trim();
  const letters = [...reason].filter((c) => /[\p{L}\p{N}]/u.test(c)).length;
  if (letters < REASON_LETTERS) {
    $("keep-error").textContent = `Write the reason out (at least ${REASON_LETTERS} letters): it goes into the report.`;
    $("keep-reason").focus();
    return;
  }
  try {
    await edit({ op: "decide", region: S.selected, decision: "keep", reason });
  } catch (e) {
    $("keep-error").textContent = e.message;  // the dialog stays: nothing was kept
    return;
  }
  closeModals();
}

async function goToFinding(finding) {
  if (finding.frame !== null && S.file.kind === "video") {
    S.frame = finding.frame;
    await showFrame();
  }
  if (finding.region) select(finding.region);
  else if (finding.box) showBox(finding.box);
}

async function maskFinding(finding) {
  // A face the verifier found outside every mask: a mask over its head; in a
  // clip, following the face both ways (video.js).
  if (finding.frame !== null && S.file.kind === "video") {
    await maskFaceInClip(finding);
    return;
  }
  await edit({ op: "draw", box: finding.box, shape: "ellipse", label: "face" });
}

async function stepHistory(step) {
  updated(await api(`/api/files/${S.file.id}/${step}`, {}));
  await showFrame();
  say(step === "undo" ? "undone" : "redone");
}

async function applyFile(checked = false) {
  if (!checked) {
    say("checking what your drops uncover...");
    const check = await api(`/api/files/${S.file.id}/uncovered`);
    if (check.uncovered.length) {
      openUncovered(check.uncovered);
      say("");
      return;
    }
  }
  await api(`/api/files/${S.file.id}/apply`, {});
  watchJob();
}

function openUncovered(found) {
  // Before Apply: the drops that would leave a face bare, each a link to where.
  const list = $("uncovered-list");
  list.replaceChildren(...found.map((u) => {
    const where = u.spans.length ? ` in frames ${u.spans.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(", ")}` : "";
    const li = element("li", {}, `${u.region}${where}: ${u.why} `);
    const show = element("button", { type: "button" }, "show");
    show.addEventListener("click", () => {
      closeModals();
      if (u.frames.length) S.frame = u.frames[0];
      S.selected = u.region;
      attempt(showFrame);
    });
    li.append(show);
    return li;
  }));
  $("uncovered-dialog").hidden = false;
  $("uncovered-cancel").focus();
}

function watchJob() {
  const id = S.file.id;
  clearInterval(S.polling);
  say("rendering and verifying...");
  S.polling = setInterval(() => attempt(async () => {
    const job = await api(`/api/files/${id}/job`);
    if (job.state === "running") {
      const frames = job.total ? ` frame ${job.done} of ${job.total}` : "";
      say(`${job.phase}${frames}...`);
      return;
    }
    clearInterval(S.polling);
    if (S.file && S.file.id === id) {
      updated(await api(`/api/files/${id}`));
      if (job.state === "rejected") S.view = "preview";  // what the refused render looked like
      await showFrame();
    }
    await refreshBatch();
    if (job.state === "failed" || job.state === "rejected") say(job.error, true);
    else say(`applied: ${S.file.state.toUpperCase()}`);
  }), 400);
}

async function approveFile() {
  updated(await api(`/api/files/${S.file.id}/approve`, {}));
  render();
  say("approved");
}

// ---- pointer: select, move, resize, draw -----------------------------------

function imagePoint(event) {
  const box = $("overlay").getBoundingClientRect();
  return [
    ((event.clientX - box.left) * S.file.width) / box.width,
    ((event.clientY - box.top) * S.file.height) / box.height,
  ];
}

function onPointerDown(event) {
  if (S.view !== "edit") return;
  const [x, y] = imagePoint(event);
  const target = event.target;
  if (lassoStart(event, [x, y])) return;
  if (S.tool) {
    S.drag = { kind: "draw", start: [x, y], box: [x, y, x + 1, y + 1] };
  } else if (target.dataset.handle) {
    const region = regionsHere().find((r) => r.id === target.dataset.handle);
    S.drag = { kind: "resize", id: region.id, start: [x, y], from: region.box, box: region.box.slice() };
  } else if (target.dataset.id) {
    const region = regionsHere().find((r) => r.id === target.dataset.id);
    if (S.selected !== region.id) {
      select(region.id);
      return;
    }
    S.drag = { kind: "move", id: region.id, start: [x, y], from: region.box, box: region.box.slice() };
  } else {
    S.selected = null;
    render();
    return;
  }
  $("overlay").setPointerCapture(event.pointerId);
  event.preventDefault();
}

function onPointerMove(event) {
  if (!S.drag) return;
  const [x, y] = imagePoint(event);
  const d = S.drag;
  if (d.kind === "draw" || d.kind === "lasso") {
    d.box = [Math.min(d.start[0], x), Math.min(d.start[1], y), Math.max(d.start[0], x), Math.max(d.start[1], y)];
  } else if (d.kind === "move") {
    const dx = x - d.start[0], dy = y - d.start[1];
    d.box = [d.from[0] + dx, d.from[1] + dy, d.from[2] + dx, d.from[3] + dy];
  } else {
    d.box = [d.from[0], d.from[1], Math.max(d.from[0] + 2, x), Math.max(d.from[1] + 2, y)];
  }
  renderOverlay();
}

function onPointerUp(event) {
  const d = S.drag;
  if (!d) return;
  onPointerMove(event);  // where the pointer was let go: the last move may not have been delivered
  S.drag = null;
  if (d.kind === "lasso") { lassoEnd(d); return; }
  const moved = d.kind === "draw" ? (d.box[2] - d.box[0] > 3 && d.box[3] - d.box[1] > 3)
    : d.box.some((v, i) => Math.abs(v - d.from[i]) > 1);
  if (!moved) {
    renderOverlay();
    return;
  }
  const frame = S.file.kind === "video" ? S.frame : null;
  if (d.kind === "draw") {
    const shape = S.tool;
    S.tool = null;
    attempt(() => edit({ op: "draw", box: d.box, shape, label: $("label").value, mode: $("mode").value, frame }));
  } else {
    attempt(() => edit({ op: "move", region: d.id, box: d.box, frame }));
  }
}

// ---- keys ------------------------------------------------------------------

function onKey(event) {
  if (!$("keep-dialog").hidden || !$("uncovered-dialog").hidden || event.target.matches("input, textarea")) {
    if (event.key === "Escape") closeModals();
    return;
  }
  if (!$("help").hidden) {
    if (event.key === "Escape" || event.key === "?") closeModals();
    return;
  }
  if (event.key === "?") {
    $("help").hidden = false;
    return;
  }
  if (!S.file) return;
  const key = event.key;
  const ctrl = event.ctrlKey || event.metaKey;
  const video = S.file.kind === "video";
  const handled = () => event.preventDefault();
  if (ctrl && key.toLowerCase() === "z") { handled(); attempt(() => stepHistory(event.shiftKey ? "redo" : "undo")); return; }
  if (ctrl && key.toLowerCase() === "y") { handled(); attempt(() => stepHistory("redo")); return; }
  if (ctrl || event.altKey) return;
  const views = { 1: "edit", 2: "preview", 3: "original" };
  if (views[key]) { S.view = views[key]; render(); return; }
  switch (key) {
    case "Escape":
      if (S.picked.size) { clearPicked(); return; }
      if (S.tool || S.selected) { S.tool = null; S.selected = null; render(); } else attempt(showBatch);
      return;
    case "n": stepRegion(1); return;
    case "N": stepRegion(-1); return;
    case "m": attempt(() => decideAndGoOn("mask")); return;
    case "x": attempt(() => decideAndGoOn("drop")); return;
    case "v": handled(); decideSelected("keep"); return;
    case "u": attempt(dropUnconfirmed); return;
    case "Delete": case "Backspace":
      if (S.selected) attempt(() => edit({ op: "remove", region: S.selected }));
      return;
    case "b": S.tool = S.tool === "box" ? null : "box"; S.view = "edit"; render(); return;
    case "o": S.tool = S.tool === "ellipse" ? null : "ellipse"; S.view = "edit"; render(); return;
    case "+": case "=": zoomTo(ZOOM_STEP); return;
    case "-": zoomTo(1 / ZOOM_STEP); return;
    case "0": zoomTo(0); return;
    case "z": zoomOnSelected(); return;
    case "a": attempt(applyFile); return;
    case "A": attempt(approveFile); return;
  }
  if (!video) return;
  switch (key) {
    case "ArrowRight": handled(); S.frame += event.shiftKey ? 10 : 1; attempt(showFrame); return;
    case "ArrowLeft": handled(); S.frame -= event.shiftKey ? 10 : 1; attempt(showFrame); return;
    case "Home": handled(); S.frame = 0; attempt(showFrame); return;
    case "End": handled(); S.frame = S.file.frames - 1; attempt(showFrame); return;
    case "f": attempt(nextFinding); return;
    case "t": attempt(nextStart); return;
    case "s": attempt(() => spanHere("first")); return;
    case "e": attempt(() => spanHere("last")); return;
    case "k": attempt(reachHere); return;
    case "c": attempt(splitHere); return;
  }
}

async function nextFinding() {
  const later = S.file.findings.filter((f) => f.frame !== null && f.frame > S.frame && f.severity !== "kept");
  later.sort((a, b) => a.frame - b.frame);
  if (!later.length) { say("no finding after this frame"); return; }
  await goToFinding(later[0]);
}

async function nextStart() {
  const later = S.file.regions.filter((r) => r.first > S.frame).sort((a, b) => a.first - b.first);
  if (!later.length) { say("no track starts after this frame"); return; }
  S.frame = later[0].first;
  S.selected = later[0].id;
  await showFrame();
}

async function spanHere(end) {
  const region = S.file.regions.find((r) => r.id === S.selected);
  if (!region) { say("select a track first"); return; }
  const first = end === "first" ? S.frame : region.first;
  const last = end === "last" ? S.frame : region.last;
  await edit({ op: "span", region: region.id, first, last });
}

async function splitHere() {
  // The selected track in two at this frame; the part from here on is selected, to decide on its own.
  const region = S.file.regions.find((r) => r.id === S.selected);
  if (!region) { say("select a track first"); return; }
  const part = await editAdding({ op: "split", region: region.id, frame: S.frame });
  if (part) { S.selected = part.id; render(); }
  say(`split: ${region.id} ends at frame ${S.frame - 1}, ${part ? part.id : "the rest"} starts here`);
}

async function reachHere() {
  // The selected region reaches this frame, holding its nearest box: a key frame to move.
  const region = S.file.regions.find((r) => r.id === S.selected);
  if (!region) { say("select a region first"); return; }
  if (S.frame >= region.first && S.frame <= region.last) { say("it is in this frame already"); return; }
  await edit({ op: "span", region: region.id, first: Math.min(region.first, S.frame), last: Math.max(region.last, S.frame) });
}

function closeModals() {
  $("keep-dialog").hidden = true;
  $("uncovered-dialog").hidden = true;
  $("help").hidden = true;
}

// ---- start -----------------------------------------------------------------

function wire() {
  document.addEventListener("keydown", onKey);
  window.addEventListener("resize", () => { if (S.file) layoutPicture(); });
  const overlay = $("overlay");
  overlay.addEventListener("pointerdown", onPointerDown);
  overlay.addEventListener("pointermove", onPointerMove);
  overlay.addEventListener("pointerup", onPointerUp);
  $("help-button").addEventListener("click", () => { $("help").hidden = false; });
  $("help-close").addEventListener("click", closeModals);
  $("back").addEventListener("click", () => attempt(showBatch));
  for (const button of document.querySelectorAll("[data-view]")) {
    button.addEventListener("click", () => { S.view = button.dataset.view; render(); });
  }
  for (const button of document.querySelectorAll("[data-filter]")) {
    button.addEventListener("click", () => {
      S.filter = button.dataset.filter;
      for (const other of document.querySelectorAll("[data-filter]")) other.classList.toggle("on", other === button);
      renderGrid();
    });
  }
  $("search").addEventListener("input", () => { S.search = $("search").value.toLowerCase(); renderGrid(); });
  $("draw-box").addEventListener("click", () => { S.tool = S.tool === "box" ? null : "box"; S.view = "edit"; render(); });
  $("draw-ellipse").addEventListener("click", () => { S.tool = S.tool === "ellipse" ? null : "ellipse"; S.view = "edit"; render(); });
  $("undo").addEventListener("click", () => attempt(() => stepHistory("undo")));
  $("redo").addEventListener("click", () => attempt(() => stepHistory("redo")));
  $("apply").addEventListener("click", () => attempt(applyFile));
  $("approve").addEventListener("click", () => attempt(approveFile));
  $("prev-frame").addEventListener("click", () => { S.frame -= 1; attempt(showFrame); });
  $("next-frame").addEventListener("click", () => { S.frame += 1; attempt(showFrame); });
  $("frame-number").addEventListener("change", () => { S.frame = Number($("frame-number").value) || 0; attempt(showFrame); });
  $("next-finding").addEventListener("click", () => attempt(nextFinding));
  $("next-start").addEventListener("click", () => attempt(nextStart));
  $("span-start").addEventListener("click", () => attempt(() => spanHere("first")));
  $("span-end").addEventListener("click", () => attempt(() => spanHere("last")));
  $("split-here").addEventListener("click", () => attempt(splitHere));
  $("keep-cancel").addEventListener("click", closeModals);
  $("keep-reason").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {  // Enter keeps; Shift+Enter starts a new line
      event.preventDefault();
      $("keep-form").requestSubmit();
    }
  });
  $("keep-form").addEventListener("submit", (event) => {
    event.preventDefault();
    submitKeep();
  });
  $("uncovered-cancel").addEventListener("click", () => { closeModals(); say("not applied"); });
  $("uncovered-apply").addEventListener("click", () => { closeModals(); attempt(() => applyFile(true)); });
}

async function start() {
  wire();
  const session = await api("/api/session");
  S.csrf = session.csrf;
  await showBatch();
  const labels = S.batch.labels.map((label) => element("option", { value: label }, label));
  $("label").replaceChildren(...labels);
  $("label").value = "face";
}

start().catch((e) => say(e.message, true));
