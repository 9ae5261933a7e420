// The voicecore page: microphone → /ws as PCM16, agent audio → playback worklet with
// acknowledged marks, live transcript and per-turn latency. No build step, no dependencies.
"use strict";

const $ = (id) => document.getElementById(id);
const STAGES = ["stt_final", "llm_first_token", "first_sentence", "tts_first_byte", "first_audio_sent", "first_audio_played"];

// What the page has seen; tests read it through window.voicecore.state().
const state = { status: "idle", sampleRate: null, audioBytes: 0, playedMs: 0, marksPlayed: 0, clears: 0, transcript: [], turns: [], end: null };
let ctx = null, ws = null, mic = null, interim = null;

for (const key of "123456789*0#") {
  const button = document.createElement("button");
  button.textContent = key;
  button.addEventListener("click", () => ws && ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify({ type: "dtmf", digit: key })));
  $("keypad").appendChild(button);
}

function setStatus(text) {
  state.status = text;
  $("status").textContent = text;
}

function line(role, text, classes) {
  const p = document.createElement("p");
  p.className = [role, ...classes].join(" ");
  p.textContent = text;
  $("transcript").appendChild(p);
  return p;
}

function onTranscript(m) {
  if (m.role === "caller") {
    if (!interim) interim = line("caller", "", ["interim"]);
    interim.textContent = m.text;
    if (m.final) {
      interim.classList.remove("interim");
      interim = null;
    }
  } else if (m.text) {
    const p = line("agent", m.text, m.complete === false ? ["cut"] : []);
    if (interim) $("transcript").insertBefore(p, interim); // keep the caller's live line last
  }
  state.transcript.push(m);
}

function onTurn(m) {
  state.turns.push(m);
  const row = document.createElement("tr");
  for (const value of [m.turn, ...STAGES.map((s) => m.ms[s])]) {
    const cell = document.createElement("td");
    cell.textContent = value === null || value === undefined ? "–" : typeof value === "number" && value % 1 ? value.toFixed(0) : String(value);
    row.appendChild(cell);
  }
  $("turns").appendChild(row);
}

async function start() {
  if (ws) return;
  setStatus("starting");
  try {
    ctx = new AudioContext({ sampleRate: 16000, latencyHint: "interactive" });
  } catch (error) {
    ctx = new AudioContext({ latencyHint: "interactive" }); // the server resamples other rates
  }
  await ctx.audioWorklet.addModule("/web/worklet.js");
  mic = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true } });
  await ctx.resume();
  state.sampleRate = ctx.sampleRate;
  const capture = new AudioWorkletNode(ctx, "capture", { numberOfInputs: 1, numberOfOutputs: 1 });
  const mute = ctx.createGain();
  mute.gain.value = 0; // keeps the capture node pulled without playing the microphone back
  ctx.createMediaStreamSource(mic).connect(capture).connect(mute).connect(ctx.destination);
  const playback = new AudioWorkletNode(ctx, "playback", { numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [1] });
  playback.connect(ctx.destination);

  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  ws = new WebSocket(`${scheme}//${location.host}/ws`);
  ws.binaryType = "arraybuffer";
  const send = (message) => ws && ws.readyState === WebSocket.OPEN && ws.send(message);
  ws.onopen = () => {
    // The page's query (?first_name=Ana) is the call's own data: the agent's {{first_name}}.
    const parameters = Object.fromEntries([...new URLSearchParams(location.search)].filter(([name]) => name !== "autostart"));
    send(JSON.stringify({ type: "start", sample_rate: ctx.sampleRate, parameters }));
    capture.port.onmessage = (event) => send(event.data);
    setStatus("connected: talk to the agent");
  };
  playback.port.onmessage = (event) => {
    const m = event.data;
    if (m.type !== "played") return;
    state.marksPlayed += 1;
    state.playedMs = (1000 * m.samples) / ctx.sampleRate;
    send(JSON.stringify({ type: "played", mark: m.mark }));
  };
  ws.onmessage = (event) => {
    if (typeof event.data !== "string") {
      state.audioBytes += event.data.byteLength;
      playback.port.postMessage({ type: "audio", data: event.data }, [event.data]);
      return;
    }
    let m;
    try {
      m = JSON.parse(event.data);
    } catch (error) {
      return;
    }
    switch (m.type) {
      case "mark": playback.port.postMessage({ type: "mark", name: m.name }); break;
      case "clear": state.clears += 1; playback.port.postMessage({ type: "clear" }); break;
      case "transcript": onTranscript(m); break;
      case "turn": onTurn(m); break;
      case "end": state.end = m; setStatus(m.message || `call ended (${m.reason})`); break;
    }
  };
  ws.onclose = () => finish(state.end ? state.status : "call ended");
}

function finish(status) {
  if (mic) mic.getTracks().forEach((track) => track.stop());
  if (ctx) ctx.close();
  ws = mic = ctx = null;
  $("call").textContent = "Start call";
  setStatus(status);
}

function stop() {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "stop" }));
  if (ws) ws.close();
}

$("call").addEventListener("click", () => {
  if (ws) return stop();
  $("call").textContent = "Hang up";
  start().catch((error) => finish(`could not start: ${error.message}`));
});

window.voicecore = { state: () => state, start, stop };
if (new URLSearchParams(location.search).has("autostart")) {
  $("call").textContent = "Hang up";
  start().catch((error) => finish(`could not start: ${error.message}`));
}
