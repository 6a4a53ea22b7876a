// The Live view: the microphone streamed to /v1/realtime (OpenAI's Realtime transcription
// session) and, if asked, to /v1/realtime/translations; captions as they come. The
// session is saved as a task (?save=s2t) and opened from History when it is.

import { socket } from "./api.js";
import { t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
let live = null;

function base64(buffer) {
  let binary = "";
  const bytes = new Uint8Array(buffer);
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function say(text) {
  $("live-state").textContent = text;
}

/** A caption line per turn: partial (in italics) until its completed text arrives. */
function caption(box, itemId) {
  let line = box.querySelector(`[data-item="${CSS.escape(itemId)}"]`);
  if (!line) {
    line = document.createElement("p");
    line.dataset.item = itemId;
    line.className = "partial";
    box.append(line);
  }
  return line;
}

function opened(ws, first) {
  return new Promise((resolve, reject) => {
    ws.addEventListener("open", () => {
      ws.send(JSON.stringify(first));
      resolve(ws);
    }, { once: true });
    ws.addEventListener("error", () => reject(new Error("WebSocket")), { once: true });
  });
}

function transcription() {
  const ws = socket("v1/realtime?intent=transcription&save=s2t");
  ws.addEventListener("message", (message) => {
    const event = JSON.parse(message.data);
    if (event.type === "conversation.item.input_audio_transcription.delta") {
      caption($("captions"), event.item_id).textContent += event.delta;
    } else if (event.type === "conversation.item.input_audio_transcription.completed") {
      const line = caption($("captions"), event.item_id);
      line.textContent = event.transcript;
      line.className = "final";
      if (!event.transcript) line.remove();
    } else if (event.type === "stepaudio.session.saved") {
      const link = document.createElement("a");
      link.href = `?task=${encodeURIComponent(event.task_id)}#process`;
      link.textContent = t("live_open");
      link.id = "live-task";
      $("live-saved").replaceChildren(t("live_saved"), " ", link);
      $("live-saved").hidden = false;
    } else if (event.type === "error") {
      say(event.error.message);
    }
  });
  return opened(ws, {
    type: "session.update",
    session: { type: "transcription", audio: { input: { format: { type: "audio/pcm", rate: 24000 }, turn_detection: { type: "server_vad" } } } },
  });
}

function translation(language) {
  const ws = socket("v1/realtime/translations");
  ws.addEventListener("message", (message) => {
    const event = JSON.parse(message.data);
    if (event.type === "session.output_transcript.delta") $("live-translation").append(event.delta);
  });
  return opened(ws, { type: "session.update", session: { audio: { output: { language } } } });
}

async function start() {
  $("live-start").disabled = true;
  $("captions").replaceChildren();
  $("live-translation").replaceChildren();
  $("live-saved").hidden = true;
  try {
    const media = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
    const context = new AudioContext();
    await context.audioWorklet.addModule(new URL("./pcm-worklet.js", import.meta.url));
    const sockets = [await transcription()];
    const translate = $("live-translate").checked;
    $("live-translation-box").hidden = !translate;
    if (translate) sockets.push(await translation($("live-target").value));
    const node = new AudioWorkletNode(context, "pcm-worklet");
    node.port.onmessage = ({ data }) => {
      const audio = base64(data);
      sockets[0].send(JSON.stringify({ type: "input_audio_buffer.append", audio }));
      if (sockets[1]) sockets[1].send(JSON.stringify({ type: "session.input_audio_buffer.append", audio }));
    };
    context.createMediaStreamSource(media).connect(node);
    for (const ws of sockets) {
      ws.addEventListener("close", (event) => {
        if (live && event.code !== 1000) say(t("live_closed", { message: event.reason || event.code }));
      });
    }
    live = { media, context, sockets, node };
    say(t("live_listening"));
    $("live-stop").disabled = false;
  } catch (error) {
    say(t("live_no_mic", { message: error.message }));
    $("live-start").disabled = false;
  }
}

async function stop() {
  if (!live) return;
  const { media, context, sockets, node } = live;
  live = null;
  $("live-stop").disabled = true;
  node.port.onmessage = null;
  media.getTracks().forEach((track) => track.stop());
  await context.close();
  say(t("live_saving"));
  // session.close: the last turns are transcribed, the session saved, then closed.
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise((resolve) => {
          ws.addEventListener("close", resolve, { once: true });
          ws.addEventListener("message", (message) => {
            if (JSON.parse(message.data).type === "session.closed") ws.close(1000);
          });
          ws.send(JSON.stringify({ type: "session.close" }));
        }),
    ),
  );
  say("");
  $("live-start").disabled = false;
}

export function setUp() {
  $("live-start").addEventListener("click", start);
  $("live-stop").addEventListener("click", stop);
  $("live-translate").addEventListener("change", () => ($("live-translation-box").hidden = !$("live-translate").checked));
}
