// veil review: a clip as people and as playback. A classic script loaded
// after review.js, whose globals it uses (S, $, api, element, attempt,
// render, showFrame, edit, say, decideSelected). The server decides and
// draws; this page asks and shows.
"use strict";

// pictures: URL -> its <img>, kept so that a step does not load it again; selected: the last
// one shown; following: a "mask it" waits for the server to follow a face
const people = { pictures: new Map(), selected: null, following: false };

// ---- a face missed in a clip, masked in one action ------------------------

async function maskFaceInClip(finding) {
  // The verifier found a face outside every mask: follow it both ways from
  // its frame, under a head-sized ellipse, until the tracker loses it.
  if (people.following) { say("still following the face: wait for it"); return; }  // one click, one region
  S.frame = finding.frame;
  await showFrame();
  say("following the face forwards and backwards...");
  people.following = true;
  let added;
  try {
    added = await editAdding({ op: "draw", box: finding.box, shape: "ellipse", label: "face", mode: "follow", frame: finding.frame });
  } finally {
    people.following = false;
  }
  if (!added) return;
  S.selected = added.id;
  render();
  const row = document.querySelector(`#timeline .row[data-id="${added.id}"]`);
  if (row) row.scrollIntoView({ block: "nearest" });
  const whole = added.first === 0 && added.last === S.file.frames - 1;
  say(`masked frames ${added.first}-${added.last}` +
    (whole ? " (the whole clip)" : ": the face was lost beyond them; look there, and press s or e to extend it"));
}

// ---- people: a gallery of the tracks --------------------------------------


function personPicture(region) {
  const url = `/media/${S.file.id}/region/${encodeURIComponent(region.id)}?at=${region.surest}&v=${S.file.version}`;
  let picture = people.pictures.get(url);
  if (!picture) {
    picture = element("img", { class: "person-picture", src: url, loading: "lazy", alt: `${region.id} at frame ${region.surest}` });
    people.pictures.set(url, picture);
  }
  return picture;
}

function renderPeople() {
  const video = S.file.kind === "video";
  $("people-section").hidden = !video;
  if (!video) return;
  const tracks = S.file.regions.filter((r) => r.surest !== undefined && r.surest !== null);
  tracks.sort((a, b) => a.first - b.first || a.id.localeCompare(b.id, "en", { numeric: true }));
  const used = new Set();
  const cards = tracks.map((region) => {
    const card = element("li", { class: `person ${region.decision}`, "data-id": region.id, title: "Show it at its surest frame" });
    if (region.id === S.selected) card.classList.add("selected");
    const picture = personPicture(region);
    used.add(picture.getAttribute("src"));
    card.append(picture);
    const line = element("div", { class: "person-line" });
    line.append(element("strong", {}, region.id), " ", element("span", { class: `d-${region.decision}` }, region.decision));
    if (region.kind === "manual") line.append(" ", element("span", { class: "person-label" }, region.label || "drawn"));
    card.append(line);
    const span = region.first === region.last ? `frame ${region.first}` : `${region.first}-${region.last}`;
    const frames = element("div", { class: "person-frames", title: `frames ${region.first} to ${region.last}, ${region.count} of them` },
      `${span} · ${region.count} fr`);
    card.append(frames);
    const buttons = element("div", { class: "buttons" });
    for (const [decision, key] of [["mask", "m"], ["drop", "x"], ["keep", "v"]]) {
      const button = element("button", { "data-person-decide": decision, title: `${decision} this track (${key})` }, decision);
      button.disabled = region.decision === decision;
      buttons.append(button);
    }
    card.append(buttons);
    card.addEventListener("click", (event) => {
      const decision = event.target.dataset && event.target.dataset.personDecide;
      attempt(async () => {
        if (decision) {
          S.selected = region.id;
          await decideSelected(decision);
        } else {
          await showPerson(region);
        }
      });
    });
    return card;
  });
  for (const url of people.pictures.keys()) if (!used.has(url)) people.pictures.delete(url);
  if (!cards.length) cards.push(element("li", { class: "person-none" }, "no tracks"));
  $("people").replaceChildren(...cards);
  $("people-count").textContent = `${tracks.length} ${tracks.length === 1 ? "track" : "tracks"}, each where veil was surest`;
  if (S.selected !== people.selected) {  // a new selection is shown; the person's own scrolling is left alone
    people.selected = S.selected;
    const card = $("people").querySelector(".person.selected");
    if (card) card.scrollIntoView({ block: "nearest" });
  }
}

async function showPerson(region) {
  // Select a track and show it where veil was surest of it.
  S.selected = region.id;
  S.frame = region.surest;
  await showFrame();
}

// ---- playback of the preview, at the clip's own speed ---------------------
//
// The frames are the server's preview of each frame by its index (the
// original with the draft's masks drawn, as Apply will render it), fetched
// a few ahead and shown at their own timestamps. A frame that is not ready
// in time is waited for, never skipped: a reviewer watching for a face must
// see every frame. No boxes are drawn over it: the masks are in its pixels.

const AHEAD = 6;  // frames fetched ahead of the one on screen
const playback = { playing: false, run: 0, view: "edit", seconds: null, shown: null };

function playing() {
  return playback.playing;
}

async function frameSeconds() {
  if (!playback.seconds || playback.seconds.id !== S.file.id) {
    const clock = await api(`/api/files/${S.file.id}/seconds`);
    playback.seconds = { id: S.file.id, list: clock.seconds };
  }
  return playback.seconds.list;
}

async function previewFrame(id, version, frame) {
  const response = await fetch(`/media/${id}/preview/${frame}?v=${version}`);
  if (!response.ok) throw new Error(`frame ${frame}: ${response.statusText}`);
  const url = URL.createObjectURL(await response.blob());
  const ready = new Image();
  ready.src = url;
  await ready.decode();
  return url;
}

function showPlayed(frame, url) {
  $("picture").src = url;
  if (playback.shown) URL.revokeObjectURL(playback.shown);
  playback.shown = url;
  S.frame = frame;
  $("frame-number").value = String(frame);
  const left = `${(100 * frame) / Math.max(1, S.file.frames)}%`;
  for (const head of document.querySelectorAll("#timeline .head")) head.style.left = left;
}

async function play() {
  if (!S.file || S.file.kind !== "video" || playback.playing) return;
  const run = ++playback.run;
  playback.playing = true;
  const seconds = await frameSeconds();
  if (playback.run !== run) return;
  if (S.frame >= S.file.frames - 1) S.frame = 0;
  playback.view = S.view;
  S.view = "preview";  // the masks as they will be published; no boxes over them
  S.tool = null;
  $("play").textContent = "❚❚ pause";
  $("play").classList.add("on");
  render();
  say("playing the preview (Space pauses)");
  const { id, frames } = S.file;
  const version = `${S.file.version}-${S.file.renders || 0}`;
  const pending = new Map();
  let frame = S.frame;
  let start = performance.now() - seconds[frame] * 1000;  // when frame 0 is due
  let late = false;
  try {
    while (playback.run === run) {
      for (let ahead = frame; ahead < Math.min(frames, frame + AHEAD); ahead++) {
        if (!pending.has(ahead)) pending.set(ahead, previewFrame(id, version, ahead));
      }
      const url = await pending.get(frame);
      pending.delete(frame);
      const wait = start + seconds[frame] * 1000 - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      else if (wait < -50) { start -= wait; late = true; }  // slower than the clip: wait, never skip
      if (playback.run !== run) { URL.revokeObjectURL(url); break; }
      showPlayed(frame, url);
      if (frame + 1 >= frames) {
        stopPlaying();
        say(late ? "played to the end (slower than the clip: frames came late)" : "played to the end");
        break;
      }
      frame += 1;
    }
  } finally {
    for (const rest of pending.values()) rest.then((url) => URL.revokeObjectURL(url), () => {});
    if (playback.run === run) stopPlaying();
  }
}

function stopPlaying() {
  // Back to stepping, at the frame on screen, in the view the person had.
  if (!playback.playing) return;
  playback.playing = false;
  playback.run += 1;
  S.view = playback.view;
  $("play").textContent = "▶ play";
  $("play").classList.remove("on");
  attempt(showFrame);
}

function togglePlay() {
  if (playback.playing) {
    stopPlaying();
    say(`paused at frame ${S.frame}`);
  } else {
    attempt(play);
  }
}

function typing(event) {
  return event.target.matches && event.target.matches("input, textarea, select");
}

function wireVideo() {
  // Captured before review.js's keys: Space plays or pauses; any other key
  // or click first stops playback, then does what it does.
  window.addEventListener("keydown", (event) => {
    if (!S.file || S.file.kind !== "video" || typing(event)) return;
    if (!$("keep-dialog").hidden || !$("help").hidden) return;
    if (event.key === " ") {
      event.preventDefault();
      event.stopPropagation();
      if (document.activeElement && document.activeElement.tagName === "BUTTON") document.activeElement.blur();
      togglePlay();
    } else if (playback.playing && !["Shift", "Control", "Alt", "Meta"].includes(event.key)) {
      stopPlaying();
      if (event.key === "Escape") { event.preventDefault(); event.stopPropagation(); }  // only stops
    }
  }, true);
  window.addEventListener("pointerdown", (event) => {
    if (playback.playing && event.target.id !== "play") stopPlaying();
  }, true);
  $("play").addEventListener("click", togglePlay);
}

wireVideo();
