// Patch Pilot's page: plain JS over the JSON API of patchpilot/serve/routes.py.
"use strict";

const $ = (id) => document.getElementById(id);
const NOTE_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];
// Computer keys of one octave and a third, as on most soft synths (A = C).
const KEY_MAP = "awsedftgyhujkolp;".split("");
const KEYBOARD_KEYS = 25; // two octaves and the C above

const state = { result: null, selected: null, octave: 4, job: null, busy: false, keyRange: [24, 108] };

const noteName = (n) => `${NOTE_NAMES[n % 12]}${Math.floor(n / 12) - 1}`;
const isBlack = (n) => [1, 3, 6, 8, 10].includes(n % 12);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

function setStatus(message) { $("status").textContent = message; }

async function api(url, options = {}) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (err) {
    throw new Error("the server does not answer: is patchpilot serve still running?");
  }
  const data = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

// ---- index info -------------------------------------------------------------------------
async function loadInfo() {
  try {
    const info = await api("/api/info");
    const synths = Object.entries(info.index.synths).map(([s, n]) => `${n} ${s}`).join(", ");
    $("index-info").textContent =
      `Index: ${info.index.path} — ${info.index.presets} presets (${synths}), embedder ${info.index.embedder}. ` +
      `Uploads up to ${info.max_upload_mb} MB and ${Math.round(info.max_upload_seconds / 60)} min.`;
    $("budget").value = info.default_budget;
    state.keyRange = info.keyboard;
  } catch (err) {
    $("index-info").textContent = "";
    showError(err.message);
  }
}

// ---- asking -----------------------------------------------------------------------------
async function run(label, request, { keepOnError = false } = {}) {
  if (state.busy) return;
  state.busy = true;
  showError("");
  const began = performance.now();
  setStatus(`${label}…`);
  const ticker = setInterval(() => setStatus(`${label}… ${((performance.now() - began) / 1000).toFixed(0)} s`), 1000);
  document.body.setAttribute("aria-busy", "true");
  try {
    const result = await request();
    showResult(result);
    $("results-title").scrollIntoView({ block: "start" });  // the answers first
    const seconds = ((performance.now() - began) / 1000).toFixed(1);
    setStatus(result.tweak ? `${tweakSummary(result.tweak)} (${seconds} s)`
                           : `${result.matches.length} matches for ${result.input} in ${seconds} s`);
  } catch (err) {
    setStatus("");
    if (!keepOnError) clearResult();  // the previous answers did not answer this: they go
    showError(err.message);
  } finally {
    clearInterval(ticker);
    document.body.removeAttribute("aria-busy");
    state.busy = false;
  }
}

function matchFile(file) {
  if (!file) return;
  const body = new FormData();
  body.append("file", file, file.name);
  run(`Matching ${file.name}`, () => api("/api/match", { method: "POST", body }));
}

function setUpInputs() {
  const drop = $("drop"), input = $("file");
  drop.addEventListener("click", () => input.click());
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); }
  });
  input.addEventListener("change", () => { matchFile(input.files[0]); input.value = ""; });
  for (const kind of ["dragenter", "dragover"]) {
    drop.addEventListener(kind, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const kind of ["dragleave", "drop"]) {
    drop.addEventListener(kind, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (e) => { e.preventDefault(); matchFile(e.dataTransfer.files[0]); });
  // a one-field form: its trimmed value posted as `field` to `path`
  const onSubmit = (form, input, field, empty, label, path) => $(form).addEventListener("submit", (e) => {
    e.preventDefault();
    const value = $(input).value.trim();
    if (!value) { showError(empty); return; }
    const body = new FormData();
    body.append(field, value);
    run(label(value), () => api(path, { method: "POST", body }));
  });
  onSubmit("link-form", "link", "url", "paste a link first", (url) => `Fetching and matching ${url}`, "/api/match");
  onSubmit("text-form", "text", "text", "type a few words about the sound", (text) => `Searching "${text}"`,
           "/api/text");
}

// ---- the matches ------------------------------------------------------------------------
const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

// a module's shape: an envelope (Vital's ADSR, a DX7 operator's rates and levels) or a filter
function drawing(shape) {
  const w = 240, h = 70, pad = 4;
  const box = svg("svg", { viewBox: `0 0 ${w} ${h}`, width: w, height: h, class: "drawing", role: "img" });
  let points = [], label = "";
  if (shape.kind === "adsr") {
    const seg = (s) => Math.log10(1 + 1000 * Math.max(s, 0)) / 4;  // seconds on a log-ish axis
    const a = seg(shape.attack), d = seg(shape.decay), r = seg(shape.release), hold = 0.25;
    const total = a + d + hold + r || 1, x = (t) => pad + (w - 2 * pad) * t / total;
    const y = (level) => h - pad - (h - 2 * pad) * level;
    const s = Math.min(Math.max(shape.sustain, 0), 1);
    points = [[x(0), y(0)], [x(a), y(1)], [x(a + d), y(s)], [x(a + d + hold), y(s)], [x(total), y(0)]];
    label = `attack ${shape.attack.toPrecision(2)} s, decay ${shape.decay.toPrecision(2)} s, ` +
            `sustain ${s.toFixed(2)}, release ${shape.release.toPrecision(2)} s`;
  } else if (shape.kind === "dx7-eg") {
    // DX7: each rate (0-99) moves toward its level (0-99); higher rates are faster
    const seg = (rate) => 0.15 + (99 - rate) / 99, hold = 0.4;
    const [r1, r2, r3, r4] = shape.rates.map(seg), [l1, l2, l3, l4] = shape.levels;
    const t1 = r1, t2 = t1 + r2, t3 = t2 + r3, off = t3 + hold, total = off + r4;  // held at L3, then released
    const x = (v) => pad + (w - 2 * pad) * v / total, y = (level) => h - pad - (h - 2 * pad) * level / 99;
    points = [[x(0), y(l4)], [x(t1), y(l1)], [x(t2), y(l2)], [x(t3), y(l3)], [x(off), y(l3)], [x(total), y(l4)]];
    label = `rates ${shape.rates.join(", ")}; levels ${shape.levels.join(", ")}`;
  } else if (shape.kind === "filter") {
    const fx = (hz) => pad + (w - 2 * pad) * Math.log10(hz / 20) / 3;  // 20 Hz-20 kHz
    const q = 0.5 + 4 * shape.resonance;
    for (let i = 0; i <= 60; i++) {
      const hz = 20 * 10 ** (3 * i / 60), ratio = hz / shape.cutoff_hz;
      const gain = 1 / Math.sqrt((1 - ratio * ratio) ** 2 + (ratio / q) ** 2);  // a 2-pole low-pass
      const db = Math.max(-36, Math.min(12, 20 * Math.log10(gain)));
      points.push([fx(hz), pad + (h - 2 * pad) * (12 - db) / 48]);
    }
    label = `cutoff ${Math.round(shape.cutoff_hz)} Hz, resonance ${Math.round(100 * shape.resonance)} %`;
  } else {
    return null;
  }
  box.append(svg("polyline", { points: points.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(" "),
                              fill: "none", stroke: "currentColor", "stroke-width": 2 }));
  box.setAttribute("aria-label", label);
  box.append(Object.assign(svg("title"), { textContent: label }));
  return box;
}

function paramsTable(match) {
  const grid = el("div", { class: "params" });
  for (const group of match.groups) {
    const table = el("table");
    table.append(el("caption", { class: "module", text: group.title }));
    for (const [name, value] of group.params) {
      table.append(el("tr", {}, el("td", { text: name }), el("td", { text: value })));
    }
    const shape = group.drawing ? drawing(group.drawing) : null;
    grid.append(el("div", { class: "module-box" }, table, shape));
  }
  return grid;
}

function ordinal(n) {
  const tens = n % 100, unit = n % 10;
  return `${n}${tens >= 10 && tens <= 20 ? "th" : unit === 1 ? "st" : unit === 2 ? "nd" : unit === 3 ? "rd" : "th"}`;
}

const TWEAK_WORDS = ["brighter", "darker", "shorter attack", "longer release", "more movement", "less reverb"];

function tweakSummary(tweak) {
  const moves = tweak.moves.map((m) => `${m.word}: ${m.moved_steps >= 0 ? "+" : ""}${m.moved_steps.toFixed(1)} ` +
    `steps of ${m.descriptor} (${m.reached ? "done" : m.at_limit ? "already at its limit" : "not reached"})`);
  return `${tweak.preset} → ${moves.join("; ")}`;
}

function matchCard(match, labelled) {
  const title = `#${match.rank} ${match.name}${match.refined ? " (refined)" : ""}`;
  const distance = state.result && state.result.tweak
    ? `moved ${match.distance.toFixed(3)} from the preset before the tweak`
    : match.refined && match.distance_before !== undefined
    ? `distance ${match.distance.toFixed(3)} (refinement loss ${match.distance_before.toFixed(3)} → ${match.distance_after.toFixed(3)})`
    : `distance ${match.distance.toFixed(3)}`;
  const select = el("button", {
    type: "button", class: "select", "aria-pressed": "false",
    "aria-label": `Play #${match.rank} ${match.name} on the keyboard`,
    text: "Play on keyboard · compare", onclick: () => selectMatch(match.rank),
  });
  const resultId = state.result ? state.result.id : null;
  const similar = el("button", {
    type: "button", class: "similar", "aria-label": `Find presets like #${match.rank} ${match.name}`,
    text: "Similar presets",
    onclick: () => run(`Finding presets like ${match.name}`,
                       () => api(`/api/results/${resultId}/matches/${match.rank}/similar`, { method: "POST" }),
                       { keepOnError: true }),
  });
  // tweak: a few words as buttons, or your own; the answer replaces the results and plays at once
  const tweakTo = (words) => run(`Tweaking ${match.name}: ${words}`, () => {
    const body = new FormData();
    body.append("words", words);
    return api(`/api/results/${resultId}/matches/${match.rank}/tweak`, { method: "POST", body });
  }, { keepOnError: true });  // a word it cannot use leaves the answers where they are
  const tweakField = el("input", { type: "text", placeholder: "or say how: darker, less reverb…",
                                   "aria-label": `How to tweak #${match.rank} ${match.name}` });
  const tweakRow = el("form", { class: "row tweak", "aria-label": `Tweak #${match.rank} ${match.name}`,
                                onsubmit: (e) => { e.preventDefault(); if (tweakField.value.trim()) tweakTo(tweakField.value.trim()); } },
    el("span", { class: "hint", text: "Tweak:" }),
    ...TWEAK_WORDS.map((words) => el("button", { type: "button", class: "tweak-word", text: words,
                                                 onclick: () => tweakTo(words) })),
    tweakField, el("button", { type: "submit", text: "Tweak" }));
  const links = el("p", { class: "links" },
    el("a", { href: match.preset_url, download: match.preset_filename, text: `Download ${match.preset_filename}` }),
    match.fx_url ? el("a", { href: match.fx_url, download: "", text: "Download effect chain (.fx.json)" }) : null,
    match.preset_with_fx_url ? el("a", { href: match.preset_with_fx_url, download: match.preset_with_fx_filename,
                                         text: `Download ${match.preset_with_fx_filename} (effects inside, alike)` }) : null,
    ...(match.fx_plugin_presets || []).map((p) => el("a", { href: p.url, download: p.filename,
                                                           text: `Download ${p.filename} (your plugin's setting)` })));
  const played = match.note_name ? `played at ${match.note_name}, velocity ${match.velocity}` : "";
  const card = el("li", { class: "match", "data-rank": match.rank, "aria-label": title },
    el("h3", {},
      labelled ? el("span", { class: `label ${match.confidence}`, text: match.confidence }) : null,
      el("span", { text: title }),
      el("span", { class: "id", text: `${match.synth_name} · ${match.category} · ${match.preset_id}` })),
    el("p", { class: "hint played" }, document.createTextNode([played, distance].filter(Boolean).join(" · "))),
    el("div", { class: "match-body" },
      el("a", { href: match.picture_url, target: "_blank", class: "picture",
                title: "Open the picture large" },
        el("img", { src: match.picture_url, width: 1200, height: 640,
          alt: `Spectrograms and envelopes of the input and of ${match.name}` })),
      el("div", {},
        el("p", { class: "hint", text: match.tags.join(", ") }),
        match.matched_on ? el("p", { class: "hint", text: "Matched on: " + Object.entries(match.matched_on)
          .map(([name, e]) => `${name} ${ordinal(Math.round(e.percentile))} percentile (${e.asked} asked)`).join(", ") }) : null,
        el("div", { class: "row" },
          el("audio", { controls: true, preload: "none", src: match.audio_url,
            "aria-label": `${match.name}` + (match.note_name ? ` at ${match.note_name}` : "") +
          ", as the exported preset plays" }),
          select, similar),
        el("p", { class: "fx" }, el("strong", { text: "Effects: " }),
          document.createTextNode(match.fx_text || "none (the dry preset)")),
        tweakRow,
        el("details", {}, el("summary", { text: "Settings, as on the synth's panel: start from the init patch and set" }),
           paramsTable(match)),
        links)));
  return card;
}

function clearResult() {
  state.result = null;
  state.selected = null;
  $("matches").replaceChildren();
  for (const id of ["legend", "input-player", "refine-box", "convergence", "keyboard-box", "ab"]) $(id).hidden = true;
  $("playing").textContent = "";
}

function showResult(result) {
  state.result = result;
  const list = $("matches");
  list.replaceChildren(...result.matches.map((m) => matchCard(m, result.labelled)));
  $("legend").hidden = !result.labelled;
  if (result.input_url) {
    $("input-audio").src = result.input_url;
    $("input-player").hidden = false;
  } else {
    $("input-player").hidden = true;
  }
  $("refine-box").hidden = !result.can_refine;
  $("convergence").hidden = !result.refine_url;
  if (result.refine_url) $("convergence").src = result.refine_url;
  $("keyboard-box").hidden = result.matches.length === 0;
  $("ab").hidden = !(result.a_url && result.matches.length);
  $("ab-a").textContent = `A: ${result.a_label}`;
  state.abSide = null;
  state.abStarted = false;
  $("ab-a").setAttribute("aria-pressed", "false");
  $("ab-b").setAttribute("aria-pressed", "false");
  $("ab-audio").pause();
  $("ab-audio").removeAttribute("src");
  $("ab-audio").load();
  // the keyboard names the answer it now plays (not the previous result's)
  if (result.matches.length) selectMatch(result.matches[0].rank);
  else $("playing").textContent = "";
  if (result.tweak) {
    setStatus(tweakSummary(result.tweak));
    if (result.matches.length && result.matches[0].note !== null) playNote(result.matches[0].note, { quiet: true });  // hear it at once
  }
  if (result.query && result.query.ignored && result.query.ignored.length) {
    setStatus(`ignored words: ${result.query.ignored.join(", ")}`);
  }
}

function selectMatch(rank, announce = true) {
  const match = state.result.matches.find((m) => m.rank === rank);
  state.selected = match;
  for (const button of document.querySelectorAll(".match .select")) {
    const pressed = Number(button.closest(".match").dataset.rank) === rank;
    button.setAttribute("aria-pressed", String(pressed));
  }
  state.octave = match.note === null ? 3 : Math.floor(match.note / 12) - 1;
  buildKeyboard();
  if (announce) $("playing").textContent = `keyboard plays #${rank} ${match.name}`;
  $("ab-b").textContent = `B: #${rank} ${match.name}`;
  if (state.abSide === "b") setAB("b");
}

// ---- A/B: one player, level-matched, switching keeps the position ----------------------
function setAB(side) {
  const result = state.result, match = state.selected;
  if (!result || !match) return;
  const player = $("ab-audio");
  const url = side === "a" ? result.a_url : `${match.audio_url}?level=matched`;
  if (!url) return;
  const at = player.currentTime || 0, playing = !player.paused;
  state.abSide = side;
  $("ab-a").setAttribute("aria-pressed", String(side === "a"));
  $("ab-b").setAttribute("aria-pressed", String(side === "b"));
  if (player.getAttribute("src") !== url) {
    player.src = url;
    player.addEventListener("loadedmetadata", () => { player.currentTime = Math.min(at, player.duration || at); },
                            { once: true });
  }
  // the first press of A or B starts playing; later ones switch and keep playing or paused
  if (playing || !state.abStarted) player.play().catch(() => {});
  state.abStarted = true;
}

function setUpAB() {
  $("ab-a").addEventListener("click", () => setAB("a"));
  $("ab-b").addEventListener("click", () => setAB("b"));
}

// ---- keyboard ---------------------------------------------------------------------------
function firstNote() { return (state.octave + 1) * 12; }

function buildKeyboard() {
  const board = $("keyboard");
  const first = firstNote();
  const whites = [];
  for (let n = first; n < first + KEYBOARD_KEYS; n++) if (!isBlack(n)) whites.push(n);
  const width = 100 / whites.length;
  const keys = [];
  for (let i = 0; i < KEYBOARD_KEYS; i++) {
    const note = first + i;
    const black = isBlack(note);
    const whiteIndex = whites.filter((w) => w < note).length;
    const left = black ? (whiteIndex - 0.3) * width : whiteIndex * width;
    const inRange = note >= state.keyRange[0] && note <= state.keyRange[1];
    const computerKey = KEY_MAP[i];
    keys.push(el("button", {
      type: "button", class: `key ${black ? "black" : "white"}`, "data-note": note,
      style: `left:${left}%;width:${black ? width * 0.6 : width}%`,
      "aria-label": `Play ${noteName(note)}` + (computerKey ? ` (key ${computerKey.toUpperCase()})` : ""),
      disabled: !inRange, text: black ? "" : noteName(note),
      onmousedown: (e) => { e.preventDefault(); playNote(note); },
      onclick: (e) => { if (e.detail === 0) playNote(note); }, // Enter / Space
    }));
  }
  // tab order left to right, white and black keys as they sit
  keys.sort((a, b) => Number(a.dataset.note) - Number(b.dataset.note));
  board.replaceChildren(...keys);
  $("octave-label").textContent = `${noteName(first)}–${noteName(first + KEYBOARD_KEYS - 1)}`;
}

async function playNote(note, { quiet = false } = {}) {
  const match = state.selected;
  if (!match) return;
  const key = document.querySelector(`.key[data-note="${note}"]`);
  if (key) { key.classList.add("active"); setTimeout(() => key.classList.remove("active"), 300); }
  const player = $("note-audio");
  const url = `${match.audio_url}?note=${note}`;
  $("playing").textContent = `${noteName(note)}: rendering #${match.rank} ${match.name}…`;
  player.src = url;
  try {
    await player.play();
    $("playing").textContent = `${noteName(note)}: #${match.rank} ${match.name}`;
  } catch (err) {
    if (err.name === "AbortError") return;  // a newer note took the player over
    if (quiet && err.name === "NotAllowedError") { $("playing").textContent = ""; return; }  // no autoplay here
    // the render's error, in one line
    const answer = await fetch(url).then((r) => r.ok ? null : r.json()).catch(() => null);
    $("playing").textContent = "";
    showError(answer && answer.error ? answer.error : `could not play ${noteName(note)}: ${err.message}`);
  }
}

function setUpKeyboard() {
  $("octave-down").addEventListener("click", () => { state.octave = Math.max(0, state.octave - 1); buildKeyboard(); });
  $("octave-up").addEventListener("click", () => { state.octave = Math.min(7, state.octave + 1); buildKeyboard(); });
  document.addEventListener("keydown", (e) => {
    if (e.repeat || e.ctrlKey || e.metaKey || e.altKey || !state.selected) return;
    const target = e.target;
    if (target.closest && target.closest("input, textarea, select, audio, [contenteditable]")) return;
    const k = e.key.toLowerCase();
    if (k === "z") { $("octave-down").click(); return; }
    if (k === "x") { $("octave-up").click(); return; }
    const index = KEY_MAP.indexOf(k);
    if (index >= 0) { e.preventDefault(); playNote(firstNote() + index); }
  });
}

// ---- refine -----------------------------------------------------------------------------
function setUpRefine() {
  $("refine-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!state.result || state.job) return;
    showError("");
    const body = new FormData();
    body.append("budget", $("budget").value);
    let job;
    try {
      job = await api(`/api/results/${state.result.id}/refine`, { method: "POST", body });
    } catch (err) { showError(err.message); return; }
    state.job = job;
    $("refine").disabled = true;
    $("cancel").disabled = false;
    const bar = $("refine-progress");
    bar.hidden = false; bar.value = 0;
    $("refine-status").textContent = "Refining: starting from the best matches…";
    const source = new EventSource(job.events_url);
    const finish = (message) => {
      source.close();
      state.job = null;
      $("refine").disabled = false;
      $("cancel").disabled = true;
      $("refine-status").textContent = message;
    };
    source.addEventListener("started", () => {
      bar.removeAttribute("value");  // moving while the parameters are probed, before the first report
      $("refine-status").textContent = "Refining: probing what each setting of the best matches changes…";
    });
    source.addEventListener("progress", (ev) => {
      const p = JSON.parse(ev.data);
      bar.max = p.total; bar.value = p.done;
      $("refine-status").textContent =
        `best loss ${p.best.toFixed(3)} · ${p.done}/${p.total} evaluations · ${p.seconds.toFixed(1)} s`;
    });
    source.addEventListener("done", (ev) => {
      const result = JSON.parse(ev.data).result;
      showResult(result);
      const top = result.matches[0];
      finish(top && top.refined
        ? `Refined: distance ${top.distance.toFixed(3)} (refinement loss ${top.distance_before.toFixed(3)} → ${top.distance_after.toFixed(3)})`
        : "No improvement: the refinement found nothing closer than the first match");
    });
    source.addEventListener("cancelled", () => finish("Refinement cancelled"));
    source.addEventListener("error", (ev) => {
      if (ev.data) { const p = JSON.parse(ev.data); finish(""); showError(p.error); }
      else if (source.readyState === EventSource.CLOSED) finish("The refinement's connection closed");
    });
  });
  $("cancel").addEventListener("click", async () => {
    if (!state.job) return;
    $("refine-status").textContent = "Cancelling…";
    try { await api(state.job.cancel_url, { method: "POST" }); } catch (err) { showError(err.message); }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setUpInputs();
  setUpKeyboard();
  setUpRefine();
  setUpAB();
  loadInfo();
});
