"""The player: logic against the FakeAudio double, sound through SDL's real disk driver."""
from __future__ import annotations

import dataclasses
import os
import random
import time
from pathlib import Path

import numpy as np
import pytest

from moodbox.config import PlayerConfig, PlaylistConfig, QuietHoursConfig
from moodbox.audio.player import PlaylistPlayer, quiet_now
from moodbox.audio.pygame_backend import PygameBackend
from moodbox.audio.playlists import Playlist, TrackQueue, collect, load_playlists, parse_m3u
from moodbox.vocabulary import unplayable_reason as sniff
from fakes import FakeAudio
from helpers import dominant_freq, read_capture, rms_windows, write_tone

NOON = 12 * 60


def corrupt_ogg() -> bytes:
    """An Ogg file whose pages look right (so it passes the playable check) and whose
    Vorbis data is noise: only decoding it finds out."""
    return (b"OggS" + bytes(22) + b"\x01\x1e\x01vorbis" + os.urandom(3000) + b"OggS"
            + os.urandom(1000))


def library(tmp_path: Path, spec: dict[str, list[tuple[str, float]]]) -> dict[str, Playlist]:
    """spec: playlist -> [(file name, tone Hz)]; 0 Hz writes a corrupt file."""
    out = {}
    for name, tracks in spec.items():
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        for fname, freq in tracks:
            p = folder / fname
            if freq:
                write_tone(p, freq, 1.0)
            else:
                p.write_bytes(corrupt_ogg())
        out[name] = PlaylistConfig(sources=(folder,))
    return load_playlists(out)


def make_player(tmp_path, spec, backend=None, mood_map=None, **cfg) -> tuple[PlaylistPlayer, FakeAudio]:
    backend = backend or FakeAudio(track_ms=5000)
    settings = dataclasses.replace(PlayerConfig(), default_playlist="favourites", **cfg)
    mood_map = mood_map or {"happy": ("upbeat",), "sad": ("calm",)}
    return PlaylistPlayer(backend, settings, library(tmp_path, spec), mood_map,
                          rng=random.Random(1)), backend


def run(player: PlaylistPlayer, fake: FakeAudio | None, t0: float, seconds: float,
        step: float = 0.1, minute: int = NOON) -> float:
    t = t0
    while t < t0 + seconds:
        if fake is not None:
            fake.advance(int(step * 1000))
        player.tick(t, minute)
        t += step
    return t


SPEC = {"favourites": [("f1.wav", 300)], "upbeat": [("u1.wav", 880), ("u2.wav", 990)],
        "calm": [("c1.wav", 440)]}


def test_mood_change_fades_out_then_in(tmp_path):
    player, fake = make_player(tmp_path, SPEC, fade_ms=800)
    player.set_mood("sad", 0.0)
    t = run(player, fake, 0.0, 1.0)
    assert fake.played[-1].name == "c1.wav" and player.playlist == "calm"
    player.set_mood("happy", t)
    assert fake.fades == [800] and player.state == "fading"
    run(player, fake, t, 1.0)
    assert player.playlist == "upbeat"
    assert fake.events[-1].startswith("play u") and fake.events[-1].endswith("fade=800")


def test_wait_end_lets_the_track_finish(tmp_path):
    player, fake = make_player(tmp_path, SPEC, on_change="wait_end")
    player.set_mood("sad", 0.0)
    t = run(player, fake, 0.0, 1.0)
    player.set_mood("happy", t)
    t = run(player, fake, t, 2.0)
    assert fake.fades == [] and player.playlist == "calm"  # still finishing c1
    run(player, fake, t, 3.5)
    assert player.playlist == "upbeat"


def test_shuffle_without_repeats():
    tracks = [Path(f"t{i}.ogg") for i in range(6)]
    q = TrackQueue(tracks, shuffle=True, rng=random.Random(3))
    played = [q.next() for _ in range(60)]
    for k in range(10):
        assert sorted(played[6 * k:6 * k + 6]) == sorted(tracks)  # each round plays all once
    assert all(a != b for a, b in zip(played, played[1:]))  # never twice in a row
    assert [TrackQueue(tracks, False, random.Random()).next() for _ in range(1)] == [tracks[0]]


def test_weighted_choice_between_playlists(tmp_path):
    spec = dict(SPEC, party=[("p1.wav", 600)])
    cfgs = {n: PlaylistConfig(sources=(tmp_path / n,), weight=(3.0 if n == "party" else 1.0))
            for n in spec}
    library(tmp_path, spec)
    pls = load_playlists(cfgs)
    player = PlaylistPlayer(FakeAudio(), PlayerConfig(), pls, {"happy": ("upbeat", "party")},
                            rng=random.Random(0))
    picks = [player._choose("happy") for _ in range(400)]
    assert 0.65 < picks.count("party") / 400 < 0.85


def test_corrupt_missing_and_unsupported_tracks_are_skipped(tmp_path, caplog):
    spec = {"favourites": [("f1.wav", 300)], "upbeat": [("a-bad.ogg", 0), ("b-good.wav", 880)]}
    (tmp_path / "upbeat").mkdir()
    (tmp_path / "upbeat" / "c.m4a").write_bytes(b"....ftypM4A")
    (tmp_path / "upbeat" / "d-empty.mp3").write_bytes(b"")
    (tmp_path / "upbeat" / "é-ünïcode ♫.wav").write_bytes(b"")
    write_tone(tmp_path / "upbeat" / "é-ünïcode ♫.wav", 700, 0.5)
    player, fake = make_player(tmp_path, spec, mood_map={"happy": ("upbeat",)})
    skipped = {s.path.name: s.reason for s in player.playlists["upbeat"].skipped}
    assert skipped == {"c.m4a": "unsupported format .m4a; use .ogg, .mp3, .wav or .flac",
                       "d-empty.mp3": "empty file"}
    fake.bad_tracks.add("a-bad.ogg")  # passes the header sniff, fails to decode
    player.set_mood("happy", 0.0)
    run(player, fake, 0.0, 12.0)
    names = [p.name for p in fake.played]
    assert "a-bad.ogg" not in names and {"b-good.wav", "é-ünïcode ♫.wav"} <= set(names)
    assert sum("skipping unplayable track" in r.message for r in caplog.records) == 1


def test_empty_playlist_falls_back_then_goes_quiet(tmp_path, caplog):
    spec = {"favourites": [("f1.wav", 300)], "upbeat": [], "calm": []}
    player, fake = make_player(tmp_path, spec)
    player.set_mood("happy", 0.0)
    run(player, fake, 0.0, 0.5)
    assert player.playlist == "favourites" and fake.played[-1].name == "f1.wav"
    # nothing playable at all: quiet, one log line, no crash loop
    (tmp_path / "x").mkdir()
    player2, fake2 = make_player(tmp_path / "x", {"favourites": [], "upbeat": [], "calm": []})
    player2.set_mood("happy", 0.0)
    t = run(player2, fake2, 0.0, 3.0)
    player2.set_mood("sad", t)
    run(player2, fake2, t, 3.0)
    assert player2.state == "quiet" and fake2.played == []
    assert sum("nothing playable in playlist" in r.message for r in caplog.records) == 1


@pytest.mark.parametrize("action,expect", [("keep", "playing"), ("lower", "playing"),
                                           ("pause", "paused"), ("stop", "stopped")])
def test_away_actions(tmp_path, action, expect):
    player, fake = make_player(tmp_path, SPEC, away=action, volume=0.7, away_volume=0.2)
    player.set_mood("happy", 0.0)
    t = run(player, fake, 0.0, 1.0)
    player.set_mood("away", t)
    t = run(player, fake, t, 1.0)
    assert player.state == expect
    if action == "lower":
        assert fake.volumes[-1] == 0.2
    if action == "keep":
        assert fake.volumes[-1] == 0.7 and player.playlist == "upbeat"
    player.set_mood("happy", t)
    run(player, fake, t, 1.0)
    assert player.state == "playing"
    if action == "pause":
        assert "resume" in fake.events


def test_volume_hard_maximum_and_quiet_hours(tmp_path):
    q = QuietHoursConfig(enabled=True, start="22:00", end="07:00", max_volume=0.1)
    player, fake = make_player(tmp_path, SPEC, volume=0.8, max_volume=0.8, quiet_hours=q)
    player.playlists["upbeat"].volume = 1.0
    player.set_mood("happy", 0.0)
    run(player, fake, 0.0, 0.5, minute=NOON)
    assert fake.volumes[-1] == 0.8
    run(player, fake, 0.5, 0.5, minute=23 * 60)
    assert fake.volumes[-1] == 0.1
    run(player, fake, 1.0, 0.5, minute=6 * 60 + 59)
    assert fake.volumes[-1] == 0.1
    run(player, fake, 1.5, 0.5, minute=7 * 60)
    assert fake.volumes[-1] == 0.8
    assert max(fake.volumes) <= 0.8


def test_quiet_hours_windows():
    q = QuietHoursConfig(enabled=True, start="13:00", end="14:30")
    assert quiet_now(q, 13 * 60) and quiet_now(q, 14 * 60 + 29) and not quiet_now(q, 14 * 60 + 30)
    assert not quiet_now(dataclasses.replace(q, enabled=False), 13 * 60 + 5)


def test_no_device_at_boot_is_retried_in_the_background(tmp_path, caplog):
    fake = FakeAudio()
    fake.unplug()
    player, _ = make_player(tmp_path, SPEC, backend=fake, audio_retry_s=2.0)
    player.set_mood("happy", 0.0)
    t = run(player, fake, 0.0, 5.0)
    assert not player.device_open and fake.opens == 0
    assert player.status(NOON).state == "no-device"
    assert sum("retrying every" in r.message for r in caplog.records) == 1
    fake.plug()
    run(player, fake, t, 2.5)
    assert player.device_open and player.state == "playing" and player.playlist == "upbeat"


def test_unplugged_mid_play_resumes_when_back(tmp_path):
    player, fake = make_player(tmp_path, SPEC, audio_retry_s=1.0)
    player.set_mood("happy", 0.0)
    t = run(player, fake, 0.0, 1.0)
    fake.unplug()
    t = run(player, fake, t, 3.0)
    assert not player.device_open and "close" in fake.events
    fake.plug()
    run(player, fake, t, 1.5)
    assert player.device_open and player.state == "playing" and player.playlist == "upbeat"


def test_stalled_device_is_detected(tmp_path):
    player, fake = make_player(tmp_path, SPEC, audio_retry_s=100.0)
    player.set_mood("happy", 0.0)
    t = run(player, fake, 0.0, 1.0)
    run(player, None, t, 6.0)  # the position stops moving, the track never ends
    assert not player.device_open


def test_permission_denied_is_fatal(tmp_path):
    fake = FakeAudio()
    fake.deny_permission()
    player, _ = make_player(tmp_path, SPEC, backend=fake)
    run(player, fake, 0.0, 0.5)
    assert "'audio' group" in player.fatal


def test_m3u_and_sources(tmp_path):
    write_tone(tmp_path / "a.wav", 300, 0.2)
    (tmp_path / "sub").mkdir()
    write_tone(tmp_path / "sub" / "b.wav", 300, 0.2)
    m3u = tmp_path / "list.m3u8"
    m3u.write_text("#EXTM3U\n#EXTINF:1,x - a\na.wav\n\n" + str(tmp_path / "sub" / "b.wav")
                   + "\nmissing.ogg\nhttp://radio.example/stream\n", encoding="utf-8")
    tracks, skipped = parse_m3u(m3u)
    assert tracks[:2] == [tmp_path / "a.wav", tmp_path / "sub" / "b.wav"]
    assert "network streams" in skipped[0].reason
    found, skipped = collect((m3u, tmp_path / "sub", tmp_path / "a.wav"))
    assert found == [tmp_path / "a.wav", tmp_path / "sub" / "b.wav"]
    assert [s.reason for s in skipped] == ["network streams are not played (local files only)",
                                           "file not found"]
    assert sniff(tmp_path / "a.wav") == ""


# --- real sound through SDL's disk driver ------------------------------------------------
def capture_session(tmp_path: Path, monkeypatch, script, **cfg) -> np.ndarray:
    out = tmp_path / "capture.raw"
    monkeypatch.setenv("SDL_AUDIODRIVER", "disk")
    monkeypatch.setenv("SDL_DISKAUDIOFILE", str(out))
    spec = {"favourites": [("f1.wav", 300)], "upbeat": [("u1.wav", 880)], "calm": [("c1.wav", 440)]}
    for name, tracks in spec.items():
        (tmp_path / name).mkdir(exist_ok=True)
        for fname, freq in tracks:
            write_tone(tmp_path / name / fname, freq, 4.0)
    pls = load_playlists({n: PlaylistConfig(sources=(tmp_path / n,), shuffle=False) for n in spec})
    player = PlaylistPlayer(PygameBackend(driver="disk"), dataclasses.replace(PlayerConfig(), **cfg),
                            pls, {"happy": ("upbeat",), "sad": ("calm",)})
    t0 = time.monotonic()
    for at, mood in script:
        while time.monotonic() - t0 < at:
            player.tick(time.monotonic(), NOON)
            time.sleep(0.01)
        player.set_mood(mood, time.monotonic())
    player.shutdown(0, time.monotonic())
    return read_capture(out)


def test_disk_capture_shows_which_track_played_and_the_fade(tmp_path, monkeypatch):
    x = capture_session(tmp_path, monkeypatch, [(0.0, "sad"), (1.5, "happy"), (3.2, "happy")],
                        fade_ms=600, volume=0.8, max_volume=0.9)
    rate = 44100
    assert len(x) > 2.5 * rate
    env = rms_windows(x)  # 50 ms windows
    start = int(np.argmax(env > 0.05))
    calm = x[(start * 2205) + int(0.7 * rate):(start * 2205) + int(1.2 * rate)]
    assert abs(dominant_freq(calm) - 440) < 5
    tail = x[-int(0.5 * rate):]
    assert abs(dominant_freq(tail) - 880) < 5
    # the fade: between the two tones the level falls smoothly to silence and rises again
    seg = env[start + 25:]
    low = int(np.argmin(seg[:40]))
    assert seg[low] < 0.05 * seg[0]
    falling = seg[:low]
    assert len(falling) >= 6 and (np.diff(falling) <= 0.01).mean() > 0.8
    rising = seg[low:low + 12]
    assert rising[-1] > 5 * rising[0]


def test_disk_capture_skips_a_corrupt_track(tmp_path, monkeypatch, caplog):
    (tmp_path / "upbeat").mkdir()
    (tmp_path / "upbeat" / "0-corrupt.ogg").write_bytes(corrupt_ogg())
    x = capture_session(tmp_path, monkeypatch, [(0.0, "happy"), (1.2, "happy")], fade_ms=0)
    assert any("skipping unplayable track" in r.message and "0-corrupt.ogg" in r.message
               for r in caplog.records)
    start = int(np.argmax(np.abs(x) > 0.01))
    assert abs(dominant_freq(x[start + 2205:start + 2205 + 22050]) - 880) < 5


def test_disk_capture_respects_away_lower(tmp_path, monkeypatch):
    x = capture_session(tmp_path, monkeypatch, [(0.0, "happy"), (1.0, "away"), (2.0, "away")],
                        fade_ms=0, volume=0.8, away="lower", away_volume=0.2)
    env = rms_windows(x)
    loud = np.median(env[(env > 0.01)][:10])
    quiet = np.median(env[-8:])
    assert 0.15 < quiet / loud < 0.35


def test_the_player_recovers_by_itself_when_files_open_again(tmp_path, monkeypatch, caplog):
    """Hostile review, finding 1: while the process has no free file descriptor (EMFILE,
    injected by lowering this process's limit to its lowest free fd), every track fails
    to open and the player goes quiet; once files open again it plays within
    QUIET_RETRY_S, with no reload and no change to the playlists (the real pygame backend
    on SDL's disk driver)."""
    import logging
    import resource

    caplog.set_level(logging.INFO, "moodbox.audio.player")
    monkeypatch.setenv("SDL_AUDIODRIVER", "disk")
    monkeypatch.setenv("SDL_DISKAUDIOFILE", str(tmp_path / "out.raw"))
    spec = {"favourites": [("f1.wav", 300)], "upbeat": [("u1.wav", 880), ("u2.wav", 660)],
            "calm": [("c1.wav", 440)]}
    player, _ = make_player(tmp_path, spec, backend=PygameBackend(driver="disk"), fade_ms=100)
    player.tick(time.monotonic(), NOON)
    assert player.device_open and player.state == "playing"  # the default playlist
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowest_free = os.open(os.devnull, os.O_RDONLY)
    os.close(lowest_free)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))  # no new fd at all
    try:
        player.set_mood("happy", time.monotonic())  # fades out, then opens the next track
        end = time.monotonic() + 5
        while player.state not in ("quiet", "playing") and time.monotonic() < end:
            player.tick(time.monotonic(), NOON)
            time.sleep(0.02)
        assert player.state == "quiet" and player.track is None
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    t0 = t = time.monotonic()
    while t < t0 + PlaylistPlayer.QUIET_RETRY_S - 1:
        t += 0.5
        player.tick(t, NOON)
    assert player.state == "quiet"  # not a busy loop: it waits for the next try
    player.tick(t0 + PlaylistPlayer.QUIET_RETRY_S + 0.1, NOON)
    try:
        assert player.state == "playing" and player.playlist == "upbeat"
        assert any("play again" in r.message for r in caplog.records)
    finally:
        player.shutdown(0, time.monotonic())
