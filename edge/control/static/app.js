// moodbox phone page: polls /api/status and sends the owner's commands. No images, ever.
"use strict";
const $ = (id) => document.getElementById(id);
let last = null;
let volumeBusy = false;
let lastSeen = null;     // when the box last answered
const TIMEOUT_MS = 4000; // a dropped network never answers: give up on a request after this

class Unreachable extends Error {}

function ago(s) {
  if (s < 90) return Math.round(s) + " s ago";
  if (s < 5400) return Math.round(s / 60) + " min ago";
  return (s / 3600).toFixed(1) + " h ago";
}

async function api(path, body) {
  const opts = { credentials: "same-origin", headers: { "X-Moodbox-Page": "1" } };
  if (body !== undefined) {
    opts.method = "POST";
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
  opts.signal = abort.signal;
  let r;
  let data;
  try {
    r = await fetch(path, opts);
    if (r.status === 401) { showLogin(); throw new Error("token required"); }
    data = await r.json();
  } catch (e) {
    if (e.message === "token required") throw e;
    throw new Unreachable(String(e && e.message || e));  // refused, dropped, timed out, not JSON
  } finally {
    clearTimeout(timer);
  }
  if (r.status >= 500) throw new Unreachable("the box answered " + r.status);
  if (!data.ok) throw new Error(data.error || "refused");
  return data;
}

function showLogin() { $("login").hidden = false; $("panel").hidden = true; }

function clock(d) { return d.toTimeString().slice(0, 8); }

// The box cannot be reached: say so plainly, grey the controls, keep trying by itself.
function setOnline(online, why) {
  const banner = $("offline");
  banner.hidden = online;
  if (!online) {
    banner.textContent = "The box is not answering: moodbox is stopped or restarting, or the "
      + "network dropped" + (why ? " (" + why + ")" : "") + ". Trying again every few seconds"
      + (lastSeen ? "; last answer at " + clock(lastSeen) : "") + ".";
  }
  $("panel").classList.toggle("offline-mode", !online);
  for (const el of $("panel").querySelectorAll("button, select, input")) el.disabled = !online;
  $("live").classList.toggle("stale", !online);
}
function render(s) {
  last = s;
  $("login").hidden = true;
  $("panel").hidden = false;
  const t = s.track;
  $("track").textContent = t ? (t.title || t.name) : "nothing playing";
  $("artist").textContent = t ? [t.artist, t.album].filter(Boolean).join(" · ") : "";
  $("playlist").textContent = s.waiting ? "" : s.playlist ? "from " + s.playlist : "";
  let why = "mood " + s.mood;
  if (s.hold) {
    why = "held on " + s.hold.playlist + (s.hold.remaining_s == null ? " until release"
          : " for " + Math.ceil(s.hold.remaining_s / 60) + " more min") + " (mood " + s.mood + ")";
  } else if (s.history.length) {
    const h = s.history[0];
    why += " since " + ago(h.ago_s) + (h.emotion ? " (" + h.emotion + " " + h.p.toFixed(2) + ")" : "");
  }
  if (s.waiting) why = s.waiting.text + (s.waiting.remaining_s == null ? " until released"
      : " for " + Math.ceil(s.waiting.remaining_s / 60) + " more min or until released");
  if (s.paused) why = "paused; " + why;
  $("why").textContent = why;
  const follow = s.follow_text || "";
  $("follow").textContent = follow ? follow.charAt(0).toUpperCase() + follow.slice(1) + "." : "";
  $("pause").textContent = s.paused ? "Resume" : "Pause";
  if (!volumeBusy) $("volume").value = s.owner_volume == null ? s.volume : s.owner_volume;
  $("volume-value").textContent = s.volume.toFixed(2) + (s.quiet_hours ? " (quiet hours)" : "")
      + " · max " + s.max_volume.toFixed(2);
  const sel = $("hold-playlist");
  if (sel.options.length !== s.playlists.length) {
    sel.replaceChildren(...s.playlists.map((n) => new Option(n, n)));
  }
  $("hold-state").hidden = !s.hold && !s.waiting;
  $("hold-text").textContent = s.hold ? "Holding " + s.hold.playlist
      : s.waiting ? "moodbox waits" : "";
  $("sees").textContent = (s.emotion ? s.emotion.name + " (" + s.emotion.p.toFixed(2) + ")" : "no face yet")
      + ", " + s.faces + " face(s)";
  $("camera").textContent = s.privacy ? "camera off (privacy)" : s.camera + ", " + s.fps.toFixed(1) + " fps";
  const cam = $("camera-switch");
  cam.textContent = s.privacy ? "Camera on" : "Camera off (privacy)";
  cam.classList.toggle("private", !!s.privacy);
  if (s.privacy) $("sees").textContent = "nothing: camera off (privacy)";
  $("learned").textContent = s.learned_text || "nothing yet";
  $("history").textContent = s.history.slice(0, 4).map((h) => h.mood + " " + ago(h.ago_s)).join(" · ") || "–";
}

async function refresh() {
  try {
    const data = await api("/api/status");
    lastSeen = new Date();
    render(data.status);
    setOnline(true);
  } catch (e) {
    if (e instanceof Unreachable) setOnline(false, "");
    else if (e.message === "token required") setOnline(true);  // it answered: the form shows
    else setOnline(false, e.message);
  }
}

async function command(name, body) {
  $("error").textContent = "";
  try {
    const data = await api("/api/" + name, body || {});
    if (data.status) render(data.status);
  } catch (e) {
    if (e instanceof Unreachable) { setOnline(false, ""); return; }
    $("error").textContent = e.message;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("skip").addEventListener("click", () => command("skip"));
  $("pause").addEventListener("click", () => command(last && last.paused ? "resume" : "pause"));
  $("release").addEventListener("click", () => command("release"));
  $("camera-switch").addEventListener("click",
    () => command("camera", { state: last && last.privacy ? "on" : "off" }));
  $("hold").addEventListener("click", () => {
    const m = $("hold-minutes").value;
    command("hold", { playlist: $("hold-playlist").value, minutes: m ? Number(m) : null });
  });
  const vol = $("volume");
  vol.addEventListener("input", () => { volumeBusy = true; });
  vol.addEventListener("change", async () => {
    await command("volume", { level: Number(vol.value) });
    volumeBusy = false;
  });
  refresh();
  setInterval(refresh, 2000);
});
