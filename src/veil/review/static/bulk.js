// veil review: many regions at once, and what has been checked. A classic
// script loaded after review.js, whose globals it shares (S, $, api, element,
// attempt, render, edit, say...). The server groups the regions, words their
// reasons and names the proof of people; this draws them and sends back ids.
"use strict";

S.picked = new Set();  // the bulk selection: region ids
S.open = {};           // group key -> unfolded or not, for the file S.openFor
S.openFor = null;
S.flash = null;        // a box to outline on the picture: the finding clicked last
const FOLDED_OVER = 12;  // a group of more regions than this starts folded

// ---- the region list, by group ---------------------------------------------

function groupOf(id) {
  const group = S.file.groups.find((g) => g.ids.includes(id));
  return group ? group.key : null;
}

function isOpen(group) {
  if (S.openFor !== S.file.id) { S.open = {}; S.openFor = S.file.id; }
  if (!(group.key in S.open)) S.open[group.key] = group.ids.length <= FOLDED_OVER;
  return S.open[group.key];
}

function groupedItems(items) {
  // The list items of renderRegions, under a header per group; folded groups show none.
  const byId = new Map(items.map((li) => [li.dataset.id, li]));
  const out = [];
  for (const group of S.file.groups) {
    const open = isOpen(group);
    const looked = group.ids.filter((id) => (S.file.regions.find((r) => r.id === id) || {}).looked).length;
    const header = element("li", { class: "group", "data-group": group.key });
    header.append(element("span", { class: "fold" }, open ? "\u25be" : "\u25b8"));
    header.append(element("span", { class: "title" }, group.title));
    header.append(element("span", { class: "count", title: "looked at, of all in the group" },
      `${looked}/${group.ids.length}`));
    const pick = element("button", { "data-pick-group": group.key, title: "Select every region of this group" }, "select");
    header.append(pick);
    header.addEventListener("click", (e) => {
      if (e.target.dataset.pickGroup) pickGroup(group);
      else { S.open[group.key] = !open; renderRegions(); }
    });
    out.push(header);
    if (open) for (const id of group.ids) if (byId.has(id)) out.push(byId.get(id));
  }
  return out;
}

function unfold(id) {
  const key = groupOf(id);
  if (key) S.open[key] = true;
}

// ---- the bulk selection -----------------------------------------------------

function pickedRegions() {
  return S.file.regions.filter((r) => S.picked.has(r.id));
}

function pickGroup(group) {
  S.picked = new Set(group.ids);
  S.selected = null;
  render();
  sayPicked();
}

function togglePick(id) {
  if (!S.picked.size && S.selected && S.selected !== id) S.picked.add(S.selected);
  if (S.picked.has(id)) S.picked.delete(id); else S.picked.add(id);
  S.selected = null;
  render();
  sayPicked();
}

function clearPicked() {
  S.picked.clear();
  render();
  say("");
}

function sayPicked() {
  if (!S.picked.size) { say("nothing selected"); return; }
  say(`${S.picked.size} selected: x drops them, m masks them, u drops the unconfirmed ones`);
}

async function decidePicked(decision) {
  // m and x on a bulk selection: every region of it, as one edit (one undo step).
  if (decision === "keep") {
    say("keep faces visible one at a time, each with its reason: select one", true);
    return;
  }
  const ids = pickedRegions().map((r) => r.id);
  if (!ids.length) { clearPicked(); return; }
  await decideMany(ids, decision, `region${ids.length === 1 ? "" : "s"} ${decision === "drop" ? "dropped" : "masked"}`);
}

async function decideMany(ids, decision, done) {
  // One edit for all of them (one undo step); the bulk selection ends.
  await edit({ op: "decide", regions: ids, decision });
  S.picked.clear();
  render();
  say(`${ids.length} ${done} (Ctrl+Z undoes)`);
}

async function dropUnconfirmed() {
  // u: drop every region of the selection that neither a sure score nor a second look backs.
  if (!S.picked.size) { say("select regions first: drag a rectangle on the picture"); return; }
  const ids = pickedRegions().filter((r) => r.unconfirmed && r.decision !== "drop").map((r) => r.id);
  if (!ids.length) { say("no unconfirmed region in the selection is masked"); return; }
  await decideMany(ids, "drop", `unconfirmed region${ids.length === 1 ? "" : "s"} dropped`);
}

async function dropProof() {
  const people = S.file.people;
  if (!people || !people.drop.length) return;
  await decideMany(people.drop, "drop", "regions dropped");
}

// ---- the rectangle ------------------------------------------------------------

function lassoStart(event, point) {
  // A drag from an empty spot, or a Shift/Ctrl drag from anywhere, draws a
  // selection rectangle; a Shift/Ctrl click on a region adds or removes it.
  if (S.tool) return false;
  const data = event.target.dataset || {};
  const add = event.shiftKey || event.ctrlKey || event.metaKey;
  if ((data.id || data.handle) && !add) return false;
  S.drag = { kind: "lasso", start: point, box: [...point, ...point], add, on: data.id || null };
  $("overlay").setPointerCapture(event.pointerId);
  event.preventDefault();
  return true;
}

function lassoEnd(d) {
  const k = scale();
  if ((d.box[2] - d.box[0]) * k < 4 && (d.box[3] - d.box[1]) * k < 4) {  // a click, not a drag
    if (d.on) togglePick(d.on);
    else if (!d.add) { S.picked.clear(); S.selected = null; S.flash = null; render(); }
    else renderOverlay();
    return;
  }
  const [x1, y1, x2, y2] = d.box;
  const inside = regionsHere().filter((r) => {
    const cx = (r.box[0] + r.box[2]) / 2, cy = (r.box[1] + r.box[3]) / 2;
    return cx >= x1 && cx <= x2 && cy >= y1 && cy <= y2;
  });
  if (!d.add) S.picked = new Set();
  else if (S.selected) S.picked.add(S.selected);
  for (const r of inside) S.picked.add(r.id);
  S.selected = null;
  render();
  sayPicked();
}

// ---- what has been checked ------------------------------------------------------

function beforeSelect(id) {
  // One region selected: the bulk selection ends, its group unfolds, it counts as looked at.
  S.picked.clear();
  S.flash = null;
  unfold(id);
  const region = S.file.regions.find((r) => r.id === id);
  if (region && !region.looked) attempt(() => noteLooked([id]));
}

async function noteLooked(ids) {
  const id = S.file.id;
  const answer = await api(`/api/files/${id}/looked`, { regions: ids });
  if (!S.file || S.file.id !== id) return;
  // What was looked at only grows: an answer older than the file shown adds nothing wrong.
  const looked = new Set(answer.looked);
  for (const region of S.file.regions) region.looked = region.looked || looked.has(region.id);
  if (!S.file.reviewed || S.file.reviewed.looked < answer.reviewed.looked) S.file.reviewed = answer.reviewed;
  renderRegions();
  renderChecked();
}

function reviewedText(reviewed) {
  return reviewed ? `${reviewed.looked} of ${reviewed.total} reviewed` : "";
}

function renderChecked() {
  const reviewed = S.file.reviewed;
  const node = $("reviewed");
  node.textContent = reviewedText(reviewed);
  node.classList.toggle("done", Boolean(reviewed && reviewed.looked === reviewed.total));
}

// ---- the side panel: proof of people, the selection -----------------------------

function renderBulk() {
  renderChecked();
  const people = S.file.people;
  const box = $("proof");
  box.hidden = !people;
  if (people) {
    const parts = [element("p", {}, people.text + ".")];
    const buttons = element("div", { class: "buttons" });
    for (const id of (people.standing.length ? people.standing : people.anchors).slice(0, 3)) {
      const show = element("button", { title: "Select it on the picture" }, `show ${id}`);
      show.addEventListener("click", () => { select(id); zoomOnSelected(); });
      buttons.append(show);
    }
    if (people.action) {
      const drop = element("button", { id: "drop-proof", class: "danger" }, people.action);
      drop.addEventListener("click", () => attempt(dropProof));
      buttons.append(drop);
    }
    parts.push(buttons);
    box.replaceChildren(...parts);
  }
  const bar = $("selection");
  bar.hidden = !S.picked.size;
  if (S.picked.size) {
    const picked = pickedRegions();
    const unconfirmed = picked.filter((r) => r.unconfirmed && r.decision !== "drop").length;
    const buttons = [
      ["mask", `mask ${picked.length} (m)`, () => decidePicked("mask")],
      ["drop", `drop ${picked.length} (x)`, () => decidePicked("drop")],
      ["unconfirmed", `drop the ${unconfirmed} unconfirmed (u)`, dropUnconfirmed],
      ["clear", "clear (Esc)", async () => clearPicked()],
    ].map(([key, text, work]) => {
      const button = element("button", { "data-bulk": key }, text);
      if (key === "unconfirmed") button.disabled = !unconfirmed;
      button.addEventListener("click", () => attempt(work));
      return button;
    });
    bar.replaceChildren(element("strong", {}, `${picked.length} selected`), ...buttons);
  }
}

// ---- findings: show where they are --------------------------------------------

function showBox(box) {
  // Outline a finding's box on the picture and bring it into view, zoomed.
  S.flash = box;
  S.view = "edit";
  render();
  zoomOnto(box);
}

// ---- a focused dropdown keeps the page's keys ------------------------------------

function keepKeysFromMenus() {
  // A focused <select> would take k, b, the arrows... as its own and change its
  // value. It keeps Tab, Enter and Space (to open it); every other key goes to
  // the page, and a chosen value lets go of the focus.
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (!(target instanceof HTMLSelectElement) || event.altKey) return;
    if (["Tab", "Enter", " "].includes(event.key)) return;
    event.preventDefault();
    target.blur();
  }, true);
  for (const menu of document.querySelectorAll("select")) {
    menu.addEventListener("change", () => menu.blur());
  }
}

keepKeysFromMenus();
