// The page's words in English and Chinese. The language is chosen before anything is
// shown (html.loading hides the body until then), so the wrong one never flashes.

const TEXTS = {
  en: {
    skip: "Skip to content", brand: "StepAudio",
    tagline: "transcripts, summaries, translations, answers",
    page_language: "Language of the page", logout: "Log out", views: "Views",
    tab_process: "Process", tab_live: "Live", tab_history: "History", tab_status: "Status",
    drop_hint: "Drop a recording here, or", choose_file: "Choose a file",
    record: "Record", record_stop: "Stop recording", recorded: "Recording {s} s",
    mode: "What do you want?", mode_s2t: "Transcript and summary", mode_asr: "Transcript",
    mode_translate: "Translate", mode_understand: "Ask a question", mode_summarize: "Summary",
    question: "Your question", target_lang: "Translate into", spoken: "Spoken language",
    spoken_auto: "Find out", diarize: "Tell the speakers apart",
    num_speakers: "How many speakers (empty: find out)",
    thinking: "Let the model reason before answering", run: "Start", result: "Result",
    reasoning: "The model's reasoning", speakers: "Speakers", transcript: "Transcript",
    source_transcript: "What was said",
    download: "Download:",
    answer_s2t: "Summary", answer_summarize: "Summary", answer_understand: "Answer",
    answer_translate: "Translation", speaker: "Speaker {label}",
    speaker_name: "Name of {label}", seek: "Play from {t}",
    no_file: "Choose or record a recording first.",
    uploading: "Sending the recording…", working: "Listening… {done} of {total} parts",
    finishing: "Putting the answer together…", done: "Done in {s} s.",
    queued: "Long recording: it runs in the background. Waiting in the queue…",
    task_running: "Working in the background: {done} of {total} parts",
    task_failed: "It failed: {message}", cancelled: "Cancelled.",
    live_intro: "Speak: captions appear as you talk. When you stop, the session is kept as a task with a summary and downloads.",
    live_start: "Start", live_stop: "Stop", live_translate: "Translate as well, into",
    captions: "Captions", translation: "Translation", live_listening: "Listening…",
    live_saving: "Saving the session…", live_saved: "Saved. Open it in the history:",
    live_open: "open the saved session", live_no_mic: "The microphone is not available: {message}",
    live_closed: "The connection closed: {message}",
    refresh: "Refresh", history_empty: "Nothing yet.", col_file: "Recording", col_mode: "What",
    col_status: "Status", col_created: "Started", col_actions: "Actions", open: "Open",
    delete: "Delete", cancel: "Cancel", confirm_delete: "Delete this task?",
    status_pending: "waiting", status_running: "running", status_completed: "done",
    status_failed: "failed", status_cancelled: "cancelled",
    st_engine: "Engine", st_model: "Model", st_ready: "Ready", st_backends: "Servers",
    st_queue: "Now", st_queue_value: "{processing} running, {waiting} waiting, {completed} done",
    yes: "yes", no: "no",
    known_voices: "Name the people whose voices I saved",
    remember: "Remember this voice", remembered: "Saved as {name}.", name_first: "Type a name first.",
    voices_title: "Saved voices",
    voices_hint: "Voices are saved from a speaker of a finished task (open it, then \"Remember this voice\"). What is kept is a voice print, never the audio; delete it here.",
    voices_empty: "No saved voices.", delete_voice: "Delete the voice of {name}",
    confirm_delete_voice: "Delete the saved voice of {name}?",
  },
  zh: {
    skip: "跳到内容", brand: "StepAudio", tagline: "转写、摘要、翻译、问答",
    page_language: "页面语言", logout: "退出登录", views: "视图",
    tab_process: "处理", tab_live: "实时", tab_history: "历史", tab_status: "状态",
    drop_hint: "把录音拖到这里，或", choose_file: "选择文件",
    record: "录音", record_stop: "停止录音", recorded: "已录 {s} 秒",
    mode: "想要什么？", mode_s2t: "转写和摘要", mode_asr: "转写",
    mode_translate: "翻译", mode_understand: "提问", mode_summarize: "摘要",
    question: "你的问题", target_lang: "翻译成", spoken: "说的语言",
    spoken_auto: "自动识别", diarize: "区分说话人",
    num_speakers: "说话人数（留空：自动判断）",
    thinking: "让模型先推理再回答", run: "开始", result: "结果",
    reasoning: "模型的推理", speakers: "说话人", transcript: "转写",
    source_transcript: "原话",
    download: "下载：",
    answer_s2t: "摘要", answer_summarize: "摘要", answer_understand: "回答",
    answer_translate: "译文", speaker: "说话人 {label}",
    speaker_name: "{label} 的名字", seek: "从 {t} 播放",
    no_file: "请先选择或录制一段录音。",
    uploading: "正在上传录音…", working: "正在听… 第 {done}/{total} 部分",
    finishing: "正在整理回答…", done: "完成，用时 {s} 秒。",
    queued: "录音较长，在后台处理。排队中…",
    task_running: "后台处理中：第 {done}/{total} 部分",
    task_failed: "失败了：{message}", cancelled: "已取消。",
    live_intro: "开始说话，字幕会随说随出。停止后，这次会话会保存为任务，附摘要和下载。",
    live_start: "开始", live_stop: "停止", live_translate: "同时翻译成",
    captions: "字幕", translation: "译文", live_listening: "正在听…",
    live_saving: "正在保存会话…", live_saved: "已保存，可在历史中打开：",
    live_open: "打开保存的会话", live_no_mic: "无法使用麦克风：{message}",
    live_closed: "连接已关闭：{message}",
    refresh: "刷新", history_empty: "还没有记录。", col_file: "录音", col_mode: "内容",
    col_status: "状态", col_created: "开始时间", col_actions: "操作", open: "打开",
    delete: "删除", cancel: "取消", confirm_delete: "删除这个任务？",
    status_pending: "排队中", status_running: "处理中", status_completed: "已完成",
    status_failed: "失败", status_cancelled: "已取消",
    st_engine: "引擎", st_model: "模型", st_ready: "就绪", st_backends: "服务器",
    st_queue: "当前", st_queue_value: "{processing} 个处理中，{waiting} 个排队，{completed} 个已完成",
    yes: "是", no: "否",
    known_voices: "标出已保存声音的人",
    remember: "记住这个声音", remembered: "已保存为 {name}。", name_first: "请先输入名字。",
    voices_title: "已保存的声音",
    voices_hint: "可以从已完成任务中的某位说话人保存声音（打开任务，再点“记住这个声音”）。保存的是声纹，不是录音；可以在这里删除。",
    voices_empty: "还没有保存的声音。", delete_voice: "删除 {name} 的声音",
    confirm_delete_voice: "删除 {name} 的声音？",
  },
};

export const LANGS = Object.keys(TEXTS);

export function pickLanguage() {
  const asked = new URLSearchParams(location.search).get("lang");
  const kept = localStorage.getItem("stepaudio.lang");
  for (const wish of [asked, kept, ...navigator.languages]) {
    const code = (wish || "").slice(0, 2).toLowerCase();
    if (LANGS.includes(code)) return code;
  }
  return "en";
}

let current = "en";

export function setLanguage(lang) {
  current = LANGS.includes(lang) ? lang : "en";
  document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
  localStorage.setItem("stepaudio.lang", current);
}

export function lang() {
  return current;
}

export function t(key, vars = {}) {
  const text = TEXTS[current][key] ?? TEXTS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

/** Fill every element marked with data-i18n (text) or data-i18n-aria (its label). */
export function translate(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-aria]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nAria));
  }
  document.title = `${t("brand")} · ${t("tagline")}`;
}

/** A language's name in the page's language ("German" / "德语"), from the browser. */
export function languageName(code) {
  try {
    const names = new Intl.DisplayNames([current === "zh" ? "zh-CN" : "en"], { type: "language" });
    return names.of(code) || code;
  } catch {
    return code;
  }
}

/** Languages offered as targets and as the spoken language. */
export const LANGUAGE_CODES = [
  "en", "zh", "ja", "ko", "fr", "de", "es", "it", "pt", "ru", "ar", "hi", "vi", "th",
  "id", "tr", "nl", "pl", "uk", "sv",
];
