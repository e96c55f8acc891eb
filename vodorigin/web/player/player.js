// vodorigin's player page: hls.js for HLS, dash.js for DASH and Smooth Streaming, the <video>
// element itself for progressive download. Everything it shows is also on window.vod, which the
// browser tests read: errors, events, renditions, audio and subtitle tracks, the ones playing, and
// ways to switch.
"use strict";

const video = document.getElementById("video");
const NO_TRACKS = {       // what each engine replaces
  levels: () => [],        // [{index, bitrate, width, height, codecs}]
  current: () => -1,       // index of the rendition playing
  switchTo: () => {},      // a rendition, and no automatic switching
  automatic: () => true,   // whether the engine picks renditions by bandwidth
  setAutomatic: () => {},  // back to automatic switching
  audioTracks: () => [],   // [{label, lang}]
  currentAudio: () => -1,
  setAudio: () => {},
  textTracks: () => [],    // [{label, lang}]
  currentText: () => -1,   // -1: subtitles off
  setText: () => {},       // an index, or -1 for off
};
const vod = {
  engine: null,      // "hls", "dash", "mss" or "native"
  errors: [],        // {engine, type, details, fatal}
  events: [],        // short strings, newest last
  segments: [],      // media segments downloaded: {kind, level, start, duration, bytes, ms, url}
  player: null,      // the Hls or dash.js MediaPlayer instance
  ...NO_TRACKS,
};
window.vod = vod;

let loadedAt = performance.now();

function note(text, isError) {
  vod.events.push(text);
  const item = document.createElement("li");
  // seconds since the stream was loaded, then the media time
  const since = ((performance.now() - loadedAt) / 1000).toFixed(2);
  item.textContent = `+${since}s @${video.currentTime.toFixed(2)} ${text}`;
  if (isError) item.className = "error";
  document.getElementById("log").append(item);
}

function fail(engine, type, details, fatal, reason) {
  vod.errors.push({engine, type: String(type), details: String(details), fatal: Boolean(fatal),
                   reason: reason ? String(reason) : ""});
  note(`${engine} ${fatal ? "FATAL" : "error"} ${type} ${details}${reason ? ` (${reason})` : ""}`, true);
}

// A request that failed: ask the origin once more and show its status and reason (our errors
// are JSON {"error": ...}), which the players' own error codes do not say.
async function explain(engine, url) {
  if (!url) return;
  try {
    const response = await fetch(url);
    if (response.ok) return;
    let reason = response.statusText;
    try { reason = (await response.json()).error || reason; } catch (_) { /* not JSON */ }
    fail(engine, `HTTP ${response.status}`, `${url}: ${reason}`, false);
  } catch (error) {
    fail(engine, "network", `${url}: ${error.message}`, false);
  }
}

// A codec the browser cannot decode (HEVC or AC-3 in Chromium, say) is named, not left to a
// silent failure.
async function explainCodecs(url) {
  const text = await (await fetch(url)).text();
  const codecs = [...text.matchAll(/CODECS="([^"]*)"/g)].flatMap((match) => match[1].split(","));
  checkCodecs("video", [...new Set(codecs)]);
}

function checkCodecs(kind, codecs) {
  for (const codec of codecs) {
    if (codec && window.MediaSource && !MediaSource.isTypeSupported(`${kind}/mp4; codecs="${codec}"`)) {
      fail("browser", "codec", `this browser cannot decode ${codec}`, false);
    }
  }
}

function guessEngine(url) {
  const path = new URL(url, location.href).pathname;
  if (path.endsWith(".m3u8")) return "hls";
  if (path.endsWith(".mpd")) return "dash";
  if (path.startsWith("/mss/") && path.endsWith("/manifest")) return "mss";
  return "native";
}

function reset() {
  // forget the old player first, so nothing the page runs (render every 250 ms) reaches it once
  // it is gone; then take it down once: hls.js and dash.js both have destroy() (dash.js's reset()
  // on a destroyed player throws)
  const old = vod.player;
  vod.player = null;
  Object.assign(vod, NO_TRACKS);
  try {
    if (old && old.destroy) old.destroy();
    else if (old && old.reset) old.reset();
  } catch (error) {
    console.warn("the previous player did not go quietly", error);
  }
  vod.errors.length = 0;
  vod.events.length = 0;
  vod.segments.length = 0;
  video.removeAttribute("src");
  document.getElementById("log").replaceChildren();
  document.querySelector("#segments tbody").replaceChildren();
}

function playHls(url) {
  // ?clearkey=<license server URL>: EME with W3C ClearKey for SAMPLE-AES in fMP4 ('cbcs', an
  // EXT-X-KEY with KEYFORMAT="org.w3.clearkey")
  const clearkey = new URLSearchParams(location.search).get("clearkey");
  const eme = clearkey ? {emeEnabled: true, drmSystems: {"org.w3.clearkey": {licenseUrl: clearkey}}} : {};
  const hls = new Hls({backBufferLength: Infinity, ...eme});
  vod.player = hls;
  hls.on(Hls.Events.ERROR, (_, data) => {
    fail("hls.js", data.type, data.details, data.fatal, data.reason || (data.error && data.error.message));
    if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
      explain("hls.js", data.url || (data.frag && data.frag.url) || (data.context && data.context.url));
    }
    if (data.details === Hls.ErrorDetails.MANIFEST_INCOMPATIBLE_CODECS_ERROR) explainCodecs(url);
  });
  hls.on(Hls.Events.MANIFEST_PARSED, (_, data) => {
    note(`manifest: ${data.levels.length} level(s)`);
    checkCodecs("video", data.levels.map((level) => level.videoCodec));
  });
  hls.on(Hls.Events.LEVEL_SWITCHED, (_, data) => note(`level ${data.level}`));
  hls.on(Hls.Events.FRAG_LOADED, (_, data) => {
    const frag = data.frag;
    if (frag.sn === "initSegment") return;
    const loading = frag.stats.loading;
    loaded(frag.type === "main" ? "main" : frag.type, frag.level, frag.start, frag.duration,
           frag.stats.loaded, loading.end - loading.start, frag.url);  // (the payload goes to the transmuxer)
  });
  vod.levels = () => hls.levels.map((level, index) =>
    ({index, bitrate: level.bitrate, width: level.width, height: level.height,
      codecs: [level.videoCodec, level.audioCodec].filter(Boolean).join(",")}));
  vod.current = () => hls.currentLevel;
  // nextLevel switches (and stays, ABR off) from the next fragment without flushing the buffer
  vod.switchTo = (index) => { hls.nextLevel = index; };
  vod.automatic = () => hls.autoLevelEnabled;
  vod.setAutomatic = () => { hls.nextLevel = -1; };
  const track = (t) => ({label: t.name, lang: t.lang || ""});
  vod.audioTracks = () => hls.audioTracks.map(track);
  vod.currentAudio = () => hls.audioTrack;
  vod.setAudio = (index) => { hls.audioTrack = index; };
  vod.textTracks = () => hls.subtitleTracks.map(track);
  vod.currentText = () => (hls.subtitleDisplay ? hls.subtitleTrack : -1);
  vod.setText = (index) => { hls.subtitleTrack = index; hls.subtitleDisplay = index >= 0; };
  hls.on(Hls.Events.AUDIO_TRACK_SWITCHED, (_, data) => note(`audio ${data.id}`));
  hls.on(Hls.Events.SUBTITLE_TRACK_SWITCH, (_, data) => note(`subtitles ${data.id}`));
  hls.loadSource(url);
  hls.attachMedia(video);
}

function playDash(url) {
  const player = dashjs.MediaPlayer().create();
  vod.player = player;
  // keep what was played in the buffer, so the page shows every buffered range; start on the
  // manifest's audio (not the language last chosen, which dash.js would remember), subtitles
  // off, as hls.js does
  player.updateSettings({streaming: {buffer: {bufferToKeep: 600, bufferPruningInterval: 600},
                                     lastMediaSettingsCachingInfo: {enabled: false},
                                     text: {defaultEnabled: false}}});
  if (new URLSearchParams(location.search).get("debug")) player.updateSettings({debug: {logLevel: 5}});
  const events = dashjs.MediaPlayer.events;
  player.on(events.ERROR, (e) => {
    const error = e.error || {};
    fail("dash.js", error.code || e.type, error.message || JSON.stringify(e.error || e), true);
    const request = error.data && (error.data.request || error.data);
    explain("dash.js", request && request.url);
  });
  player.on(events.FRAGMENT_LOADING_COMPLETED, (e) => {
    const request = e.request || {};
    if (request.type !== "MediaSegment" || !e.response) return;
    // dash.js 5 keeps the request's dates as startDate and endDate, and its Representation
    const ms = request.startDate && request.endDate ? request.endDate - request.startDate : NaN;
    const representation = request.representation || {};
    loaded(request.mediaType, representation.id ?? request.representationId, request.startTime,
           request.duration, request.bytesLoaded || e.response.byteLength, ms, request.url);
  });
  player.on(events.PLAYBACK_ERROR, (e) => fail("dash.js", "playback", e.error && e.error.message, true));
  player.on(events.QUALITY_CHANGE_RENDERED, (e) => {
    if (e.mediaType === "video") note(`level ${vod.current()}`);
  });
  player.on(events.STREAM_INITIALIZED, () => {
    note(`stream: ${vod.levels().length} video rendition(s)`);
    checkCodecs("video", vod.levels().map((level) => level.codecs));
  });
  const representations = () => player.getRepresentationsByType("video") || [];
  vod.levels = () => representations().map((r, index) =>
    ({index, bitrate: r.bandwidth || r.bitrateInKbit * 1000, width: r.width, height: r.height, codecs: r.codecs}));
  vod.current = () => {
    const current = player.getCurrentRepresentationForType("video");
    return current ? representations().findIndex((r) => r.id === current.id) : -1;
  };
  vod.switchTo = (index) => {
    player.updateSettings({streaming: {abr: {autoSwitchBitrate: {video: false}}}});
    player.setRepresentationForTypeByIndex("video", index, false);
  };
  vod.automatic = () => player.getSettings().streaming.abr.autoSwitchBitrate.video;
  vod.setAutomatic = () => player.updateSettings({streaming: {abr: {autoSwitchBitrate: {video: true}}}});
  const track = (t) => ({label: (t.labels && t.labels.length && t.labels[0].text) || "", lang: t.lang || ""});
  const audio = () => player.getTracksFor("audio") || [];
  vod.audioTracks = () => audio().map(track);
  vod.currentAudio = () => {
    const current = player.getCurrentTrackFor("audio");
    return current ? audio().findIndex((t) => t.id === current.id && t.index === current.index) : -1;
  };
  vod.setAudio = (index) => player.setCurrentTrack(audio()[index]);
  vod.textTracks = () => (player.getTracksFor("text") || []).map(track);
  vod.currentText = () => (player.isTextEnabled() ? player.getCurrentTextTrackIndex() : -1);
  vod.setText = (index) => player.setTextTrack(index);  // -1 turns text off, any other index on
  player.on(events.TRACK_CHANGE_RENDERED, (e) => {
    if (e.mediaType !== "video") note(`${e.mediaType} ${e.newMediaInfo && e.newMediaInfo.lang}`);
  });
  // ?clearkey=<license server URL>: W3C ClearKey for Common Encryption (the server answers the
  // EME license request with the keys, as a DRM license server would)
  const clearkey = new URLSearchParams(location.search).get("clearkey");
  if (clearkey) player.setProtectionData({"org.w3.clearkey": {serverURL: clearkey}});
  player.initialize(video, url, true);
  player.attachTTMLRenderingDiv(document.getElementById("captions"));  // TTML (stpp, Smooth) is drawn there
}

function load(url, engine) {
  reset();
  loadedAt = performance.now();
  vod.engine = engine === "auto" ? guessEngine(url) : engine;
  note(`load ${url} with ${vod.engine}`);
  if (vod.engine === "hls") playHls(url);
  else if (vod.engine === "dash" || vod.engine === "mss") playDash(url);
  else video.src = url;
  const rate = Number(new URLSearchParams(location.search).get("rate") || 1);
  video.addEventListener("playing", () => { video.playbackRate = rate; }, {once: true});
  video.play().catch((e) => note(`play() waits: ${e.message}`));
}
vod.load = load;

video.addEventListener("error", () => {
  const error = video.error;
  fail("video", "media", error ? `${error.code} ${error.message}` : "unknown", true);
});
for (const name of ["waiting", "stalled", "seeking", "seeked", "ended"]) {
  video.addEventListener(name, () => note(name));
}

function ranges(list) {
  const result = [];
  for (let i = 0; i < list.length; i++) result.push([list.start(i), list.end(i)]);
  return result;
}
vod.buffered = () => ranges(video.buffered);

// A list of choices with a button each, rebuilt when its texts change; the current one in bold.
function choices(id, entries, current) {
  const list = document.getElementById(id);
  const texts = entries.map((entry) => entry.text).join("\n");
  if (list.dataset.texts !== texts) {
    list.dataset.texts = texts;
    list.replaceChildren(...entries.map((entry) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.textContent = entry.action;
      button.onclick = entry.pick;
      item.append(`${entry.text} `, button);
      return item;
    }));
  }
  entries.forEach((entry, position) =>
    list.children[position].classList.toggle("current", entry.index === current));
}

// The timeline: every media segment the engine downloaded, drawn at its media time (one lane per
// kind: main/video, audio, subtitle), its height the segment's bit rate, its colour the rendition;
// the buffered ranges under them and the playhead across.
function loaded(kind, level, start, duration, bytes, ms, url) {
  vod.segments.push({kind: String(kind), level: String(level), start, duration, bytes, ms, url});
  const row = document.createElement("tr");
  const kbps = duration > 0 ? Math.round(bytes * 8 / duration / 1000) : 0;
  for (const cell of [kind, level, start.toFixed(2), duration.toFixed(3), `${(bytes / 1000).toFixed(1)} kB`,
                      `${kbps} kb/s`, Number.isFinite(ms) ? `${Math.round(ms)} ms` : "?"]) {
    const td = document.createElement("td");
    td.textContent = cell;
    row.append(td);
  }
  const body = document.querySelector("#segments tbody");
  body.prepend(row);
  while (body.children.length > 12) body.lastChild.remove();  // the newest twelve
}

const hue = (level) => [...String(level)].reduce((sum, c) => (sum * 31 + c.charCodeAt(0)) % 360, 7);

function drawTimeline() {
  const canvas = document.getElementById("timeline");
  const context = canvas.getContext("2d");
  const width = canvas.width, height = canvas.height;
  context.clearRect(0, 0, width, height);
  const end = Math.max(video.duration || 0, ...vod.segments.map((s) => s.start + s.duration), 1);
  const x = (time) => time / end * width;
  const kinds = [...new Set(vod.segments.map((s) => s.kind))];
  const bar = 12;  // the buffer strip at the bottom
  const lane = (height - bar - 4) / Math.max(kinds.length, 1);
  const rate = (s) => (s.duration > 0 ? s.bytes * 8 / s.duration : 0);
  kinds.forEach((kind, position) => {
    const segments = vod.segments.filter((s) => s.kind === kind);
    const top = Math.max(...segments.map(rate), 1);
    const bottom = (position + 1) * lane;
    for (const s of segments) {
      const h = Math.max(rate(s) / top * (lane - 14), 2);
      context.fillStyle = `hsl(${hue(s.level)} 60% 55%)`;
      context.fillRect(x(s.start), bottom - h, Math.max(x(s.duration) - 1, 1), h);
    }
    context.fillStyle = "#333";
    context.font = "11px system-ui";
    context.fillText(`${kind} (top ${Math.round(top / 1000)} kb/s)`, 2, bottom - lane + 11);
  });
  context.fillStyle = "#bbb";
  for (const [a, b] of vod.buffered()) context.fillRect(x(a), height - bar, Math.max(x(b - a), 1), bar);
  context.fillStyle = "#d00";
  context.fillRect(Math.min(x(video.currentTime), width - 2), 0, 2, height);
}

const trackName = (track) => [track.label, track.lang && `(${track.lang})`].filter(Boolean).join(" ") || "?";

function render() {
  const quality = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : {};
  document.getElementById("status").textContent =
    `time ${video.currentTime.toFixed(2)} / ${(video.duration || 0).toFixed(2)}  ` +
    `frames ${quality.totalVideoFrames || 0} (dropped ${quality.droppedVideoFrames || 0})  ` +
    `audio bytes ${video.webkitAudioDecodedByteCount || 0}  rate ${video.playbackRate}`;
  drawTimeline();
  document.getElementById("buffered").textContent =
    vod.buffered().map(([a, b]) => `${a.toFixed(2)}-${b.toFixed(2)}`).join(", ") || "nothing";
  choices("levels", vod.levels().map((level) => ({index: level.index, action: "switch",
    text: `${level.width ? `${level.width}x${level.height}` : "audio"} ${Math.round(level.bitrate / 1000)} kb/s` +
          (level.codecs ? ` ${level.codecs}` : ""),
    pick: () => vod.switchTo(level.index)})), vod.current());
  document.getElementById("auto").classList.toggle("on", vod.automatic());
  choices("audio", vod.audioTracks().map((track, index) => ({index, action: "listen",
    text: trackName(track), pick: () => vod.setAudio(index)})), vod.currentAudio());
  const texts = vod.textTracks();
  const offAndTexts = texts.length ? [{label: "off"}, ...texts] : [];  // "off" is index -1
  choices("subtitles", offAndTexts.map((track, position) => ({index: position - 1, action: "show",
    text: trackName(track), pick: () => vod.setText(position - 1)})), vod.currentText());
}
setInterval(render, 250);

async function listMedia() {
  const response = await fetch("media.json");
  const body = document.querySelector("#media tbody");
  for (const entry of (await response.json()).media) {
    const row = document.createElement("tr");
    const name = document.createElement("td");
    name.textContent = entry.path;
    row.append(name);
    for (const [label, url] of Object.entries(entry.urls)) {
      const cell = document.createElement("td");
      const link = document.createElement("a");
      link.textContent = label;
      link.href = url;
      if (label === "hds") {
        link.textContent = "hds (fetch)";  // no browser plays HDS: the manifest is there to fetch
        link.download = "";
      } else {
        link.onclick = (event) => { event.preventDefault(); document.getElementById("url").value = url; load(url, "auto"); };
      }
      cell.append(link);
      row.append(cell);
    }
    body.append(row);
  }
}

document.getElementById("auto").addEventListener("click", () => vod.setAutomatic());
document.getElementById("load").addEventListener("submit", (event) => {
  event.preventDefault();
  load(document.getElementById("url").value, document.getElementById("engine").value);
});
listMedia();
const wanted = new URLSearchParams(location.search).get("url");
if (wanted) {
  document.getElementById("url").value = wanted;
  load(wanted, new URLSearchParams(location.search).get("engine") || "auto");
}
