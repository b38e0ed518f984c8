// moodbox phone page: polls /api/status and sends the owner's commands. No images, ever.
"use strict";
const $ = (id) => document.getElementById(id);
let last = null;
let volumeBusy = false;

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
  const r = await fetch(path, opts);
  if (r.status === 401) { showLogin(); throw new Error("token required"); }
  const data = await r.json();
  if (!data.ok) throw new Error(data.error || "refused");
  return data;
}

function showLogin() { $("login").hidden = false; $("panel").hidden = true; }

function render(s) {
  last = s;
  $("login").hidden = true;
  $("panel").hidden = false;
  const t = s.track;
  $("track").textContent = t ? (t.title || t.name) : "nothing playing";
  $("artist").textContent = t && t.artist ? t.artist : "";
  $("playlist").textContent = s.playlist ? "from " + s.playlist : "";
  let why = "mood " + s.mood;
  if (s.hold) {
    why = "held on " + s.hold.playlist + (s.hold.remaining_s == null ? " until release"
          : " for " + Math.ceil(s.hold.remaining_s / 60) + " more min") + " (mood " + s.mood + ")";
  } else if (s.history.length) {
    const h = s.history[0];
    why += " since " + ago(h.ago_s) + (h.emotion ? " (" + h.emotion + " " + h.p.toFixed(2) + ")" : "");
  }
  if (s.paused) why = "paused; " + why;
  $("why").textContent = why;
  $("pause").textContent = s.paused ? "Resume" : "Pause";
  if (!volumeBusy) $("volume").value = s.owner_volume == null ? s.volume : s.owner_volume;
  $("volume-value").textContent = s.volume.toFixed(2) + (s.quiet_hours ? " (quiet hours)" : "")
      + " · max " + s.max_volume.toFixed(2);
  const sel = $("hold-playlist");
  if (sel.options.length !== s.playlists.length) {
    sel.replaceChildren(...s.playlists.map((n) => new Option(n, n)));
  }
  $("hold-state").hidden = !s.hold;
  $("hold-text").textContent = s.hold ? "Holding " + s.hold.playlist : "";
  $("sees").textContent = (s.emotion ? s.emotion.name + " (" + s.emotion.p.toFixed(2) + ")" : "no face yet")
      + ", " + s.faces + " face(s)";
  $("camera").textContent = s.camera + ", " + s.fps.toFixed(1) + " fps";
  $("learned").textContent = s.learned_text || "nothing yet";
  $("history").textContent = s.history.slice(0, 4).map((h) => h.mood + " " + ago(h.ago_s)).join(" · ") || "–";
}

async function refresh() {
  try {
    const data = await api("/api/status");
    render(data.status);
    $("live").classList.remove("stale");
  } catch (e) {
    $("live").classList.add("stale");
  }
}

async function command(name, body) {
  $("error").textContent = "";
  try {
    const data = await api("/api/" + name, body || {});
    if (data.status) render(data.status);
  } catch (e) {
    $("error").textContent = e.message;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("skip").addEventListener("click", () => command("skip"));
  $("pause").addEventListener("click", () => command(last && last.paused ? "resume" : "pause"));
  $("release").addEventListener("click", () => command("release"));
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
