// The Process view: a recording in, the answer and the transcript out, through
// POST /api/process (server-sent events: text shows as it is heard) or, for long
// recordings, POST /api/task followed until it is done.

import { call, stream, url } from "./api.js";
import { LANGUAGE_CODES, languageName, lang, t } from "./i18n.js";
import { renderSegments, renderSpeakerNames, withNames } from "./render.js";

const TASK_AFTER_S = 600; // longer recordings run in the background (History keeps them)
const FORMATS = ["txt", "srt", "vtt", "json", "md"];
const $ = (id) => document.getElementById(id);

const state = { file: null, name: "", result: null, names: {}, segments: [], recorder: null, taskId: null };

export function mode() {
  return document.querySelector('input[name="mode"]:checked').value;
}

function showFields() {
  const current = mode();
  for (const p of document.querySelectorAll(".fields [data-for]")) {
    const wanted = p.dataset.for.split(" ").includes(current);
    const gated = (p.id === "speakers-field" && !$("diarize").checked) ||
      (p.id === "thinking-field" && !document.body.dataset.thinks);
    p.hidden = !wanted || gated;
  }
}

export function fillLanguages() {
  const target = $("target-lang");
  const spoken = $("spoken");
  const keepTarget = target.value;
  const keepSpoken = spoken.value;
  const options = (codes) => codes.map((code) => new Option(languageName(code), code));
  target.replaceChildren(...options(LANGUAGE_CODES));
  spoken.replaceChildren(new Option(t("spoken_auto"), ""), ...options(LANGUAGE_CODES));
  spoken.value = keepSpoken;
  target.value = keepTarget || defaultTarget();
  $("live-target").replaceChildren(...options(LANGUAGE_CODES));
  $("live-target").value = defaultTarget();
}

/** The page's language, unless that is what is spoken: then English, or Chinese. */
function defaultTarget() {
  const spoken = $("spoken").value;
  const mine = lang();
  if (spoken !== mine) return mine;
  return mine === "en" ? "zh" : "en";
}

function choose(file, name) {
  state.file = file;
  state.name = name;
  $("file-name").textContent = name;
  $("player").src = URL.createObjectURL(file);
}

async function record() {
  const button = $("record");
  if (state.recorder) {
    state.recorder.stop();
    return;
  }
  let media;
  try {
    media = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    showError(t("live_no_mic", { message: error.message }));
    return;
  }
  const chunks = [];
  const recorder = new MediaRecorder(media);
  const started = Date.now();
  const tick = setInterval(() => {
    $("file-name").textContent = t("recorded", { s: Math.round((Date.now() - started) / 1000) });
  }, 500);
  recorder.ondataavailable = (event) => chunks.push(event.data);
  recorder.onstop = () => {
    clearInterval(tick);
    media.getTracks().forEach((track) => track.stop());
    state.recorder = null;
    button.textContent = t("record");
    const stamp = new Date().toISOString().slice(0, 19).replace(/[T:]/g, "-");
    choose(new Blob(chunks, { type: recorder.mimeType }), `recording-${stamp}.webm`);
  };
  recorder.start(1000);
  state.recorder = recorder;
  button.textContent = t("record_stop");
}

function form() {
  const data = new FormData();
  const current = mode();
  data.append("audio", state.file, state.name);
  data.append("mode", current);
  if (current === "understand" && $("question").value.trim()) data.append("question", $("question").value.trim());
  if (current === "translate") data.append("target_lang", $("target-lang").value);
  if ($("spoken").value) data.append("language", $("spoken").value);
  if (["s2t", "asr", "translate"].includes(current) && $("known-voices").checked) data.append("voices", "*");
  if (["s2t", "asr", "translate"].includes(current) && $("diarize").checked) {
    data.append("diarize", "true");
    if ($("num-speakers").value) data.append("num_speakers", $("num-speakers").value);
  }
  if (document.body.dataset.thinks) data.append("thinking", String($("thinking").checked));
  return data;
}

function progress(text, done = null, total = null) {
  const box = $("progress");
  box.hidden = false;
  const bar = box.querySelector("progress");
  if (total) {
    bar.max = total;
    bar.value = done;
  } else {
    bar.removeAttribute("value");
  }
  $("progress-text").textContent = text;
}

export function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function seek(seconds) {
  const player = $("player");
  player.currentTime = seconds;
  player.play().catch(() => {}); // autoplay rules may say no; the position is set
}

function drawTranscript() {
  const labels = renderSegments($("transcript"), state.segments, { names: state.names, onSeek: seek });
  $("transcript-box").hidden = !state.segments.length;
  $("speakers-box").hidden = !labels.length;
  if (labels.length && $("speaker-names").childElementCount !== labels.length) {
    // A finished task's speakers can be remembered: "this is Alice" (its audio is kept).
    const remember = state.taskId
      ? (label, name) =>
          call("api/voices/from-task", { method: "POST", json: { task_id: state.taskId, speaker: label, name } })
      : null;
    renderSpeakerNames(
      $("speaker-names"),
      labels,
      state.names,
      (label, name) => {
        state.names[label] = name;
        drawTranscript();
      },
      remember,
    );
  }
}

/** Show a finished result: the answer once, the transcript once. */
export function showResult(result, name, audioUrl) {
  state.result = result;
  state.name = name || state.name;
  state.segments = result.segments || [];
  $("result").hidden = false;
  if (audioUrl) $("player").src = audioUrl;
  // A translation's segments are the translation itself, timed: shown once, as the timed
  // list; what was said (the result's transcript, where the engine heard one) beside it.
  const verbatim = result.mode === "asr" || result.mode === "translate";
  const answer = result.mode === "s2t" ? result.summary || result.answer : result.answer;
  $("answer-box").hidden = verbatim || !answer;
  $("answer-title").textContent = t(`answer_${result.mode}`);
  showAnswer(verbatim ? "" : answer, result.citations || []);
  const source = result.mode === "translate" ? result.transcript || "" : "";
  $("source-box").hidden = !source;
  $("source").textContent = source;
  $("reasoning-box").hidden = !result.thinking;
  $("reasoning").textContent = result.thinking || "";
  $("transcript-title").textContent = t(result.mode === "translate" ? "answer_translate" : "transcript");
  drawTranscript();
  drawDownloads();
}

/** The answer, its quoted times (each one a citation's, checked by the service) as
 * buttons that play the recording from there. */
function showAnswer(text, citations) {
  const box = $("answer");
  const starts = new Map(citations.map((c) => [clockOf(c.start), c.start]));
  const parts = text.split(/(\[\d{1,2}:\d{2}(?::\d{2})?\])/);
  box.replaceChildren(
    ...parts.map((part) => {
      const at = starts.get(part.slice(1, -1));
      if (at === undefined) return document.createTextNode(part);
      const button = document.createElement("button");
      button.type = "button";
      button.className = "link ts";
      button.textContent = part;
      button.title = t("seek", { t: part.slice(1, -1) });
      button.addEventListener("click", () => seek(at));
      return button;
    }),
  );
}

/** The service's own way of writing a citation's time: m:ss, or h:mm:ss. */
function clockOf(seconds) {
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

function drawDownloads() {
  const box = $("downloads");
  box.replaceChildren(box.firstElementChild);
  const stem = (state.name || "stepaudio").replace(/\.[^.]+$/, "");
  for (const format of FORMATS) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    button.textContent = format;
    button.setAttribute("aria-label", `${t("download")} ${stem}.${format}`);
    button.addEventListener("click", () => download(format, `${stem}.${format}`));
    box.append(button);
  }
}

async function download(format, filename) {
  const text = await call(`api/render?format=${format}`, { method: "POST", json: withNames(state.result, state.names) });
  const body = typeof text === "string" ? text : JSON.stringify(text, null, 2);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([body], { type: "text/plain;charset=utf-8" }));
  link.download = filename;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

function reset() {
  showError("");
  state.result = null;
  state.names = {};
  state.segments = [];
  state.taskId = null;
  $("result").hidden = true;
  $("speaker-names").replaceChildren();
}

async function submit(event) {
  event.preventDefault();
  if (!state.file) {
    showError(t("no_file"));
    $("file").focus();
    return;
  }
  reset();
  $("run").disabled = true;
  const started = performance.now();
  try {
    const duration = $("player").duration;
    if (Number.isFinite(duration) && duration > TASK_AFTER_S) {
      await runTask();
    } else {
      progress(t("uploading"));
      await stream("api/process", form(), (name, data) => onEvent(name, data, started));
    }
  } catch (error) {
    $("progress").hidden = true;
    showError(error.message);
  } finally {
    $("run").disabled = false;
  }
}

function onEvent(name, data, started) {
  if (name === "progress") {
    progress(data.done >= data.total ? t("finishing") : t("working", data), data.done, data.total);
  } else if (name === "heard" || name === "window") {
    // Text as it is heard: a window's pieces as they are decoded, then the window itself,
    // which replaces its pieces (a translation replaces what was said).
    if (name === "window") state.segments = state.segments.filter((s) => s.window !== data.index);
    state.segments.push(...(data.segments || []).map((s) => ({ ...s, window: data.index })));
    $("result").hidden = false;
    drawTranscript();
  } else if (name === "result") {
    showResult(data);
    progress(t("done", { s: ((performance.now() - started) / 1000).toFixed(1) }), 1, 1);
  } else if (name === "error") {
    throw new Error(data.error?.message || "error");
  }
}

async function runTask() {
  progress(t("uploading"));
  const accepted = await call("api/task", { method: "POST", body: form() });
  const address = new URL(location.href);
  address.searchParams.set("task", accepted.task_id);
  history.replaceState(null, "", address);
  await follow(accepted.task_id);
}

/** Follow a task until it ends, showing its progress; then its result. */
export async function follow(taskId) {
  progress(t("queued"));
  for (;;) {
    const task = await call(`api/task/${encodeURIComponent(taskId)}`);
    if (task.status === "completed") {
      $("progress").hidden = true;
      state.taskId = taskId;
      showResult(task.result, task.filename);
      return task;
    }
    if (task.status === "failed") throw new Error(t("task_failed", { message: task.error?.message || "" }));
    if (task.status === "cancelled") throw new Error(t("cancelled"));
    if (task.status === "running" && task.progress.total) {
      progress(t("task_running", task.progress), task.progress.done, task.progress.total);
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

export async function reopen(taskId) {
  reset();
  try {
    await follow(taskId);
  } catch (error) {
    $("progress").hidden = true;
    showError(error.message);
  }
}

export function setUp() {
  for (const input of document.querySelectorAll('input[name="mode"]')) input.addEventListener("change", showFields);
  $("diarize").addEventListener("change", showFields);
  $("spoken").addEventListener("change", () => ($("target-lang").value = defaultTarget()));
  $("file").addEventListener("change", () => {
    const file = $("file").files[0];
    if (file) choose(file, file.name);
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const file = event.dataTransfer.files[0];
    if (file) choose(file, file.name);
  });
  $("record").addEventListener("click", record);
  $("process-form").addEventListener("submit", submit);
  showFields();
  return { showFields };
}

export { url };
