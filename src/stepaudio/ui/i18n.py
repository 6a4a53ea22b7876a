"""The web page's words in English and Chinese, and how a visitor's language is chosen.

Our own two-language table (not ``gr.I18n``) because handlers write text too (progress,
audio info, status) and need the same language as the labels; the page's switch changes
both at once.
"""

from __future__ import annotations

LANGUAGES: dict[str, str] = {"en": "English", "zh": "中文"}

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Step-Audio: transcripts, summaries, translations, answers",
        "intro": "Upload a recording or record one, pick what you want, press **Run**. "
        "Recordings of any length work; long ones run in the background and can be "
        "reopened from the page's address.",
        "language": "Interface language",
        "tab_process": "Process",
        "tab_status": "Service status",
        "audio": "Recording (upload or microphone)",
        "audio_info": "About the recording",
        "mode": "What do you want?",
        "mode_s2t": "Transcript + summary",
        "mode_asr": "Transcript (verbatim)",
        "mode_understand": "Ask a question",
        "mode_translate": "Translate",
        "mode_summarize": "Summary",
        "question": "Your question about the recording",
        "target_lang": "Translate into",
        "instruction": "Extra instruction (optional)",
        "advanced": "Advanced settings",
        "max_tokens": "Max tokens per model call",
        "temperature": "Temperature (picking a mode sets its usual value; 0 = deterministic)",
        "thinking": "Let the model think before answering",
        "segment": "Window length in seconds (0 = automatic)",
        "diarize": "Label who speaks (speakers A, B, ...)",
        "speakers": "Who said what",
        "as_task": "Run in the background as a task (automatic for long recordings)",
        "run": "Run",
        "progress": "Progress",
        "answer": "Answer",
        "thinking_box": "Reasoning",
        "transcript": "Transcript with timestamps",
        "summary": "Summary",
        "downloads": "Downloads (txt, srt, vtt, json)",
        "task": "Task id (share the page's address to reopen it)",
        "refresh": "Refresh",
        # Texts written by handlers.
        "no_audio": "Upload or record a recording first.",
        "info_line": "**{duration}** · {format} / {codec} · {rate} Hz · {channels} ch · {size}",
        "info_windows": "About **{windows}** window(s) for this mode.",
        "info_task": "Long recording: it will run in the background as a task.",
        "starting": "Starting…",
        "decoding": "Reading the audio…",
        "windows": "{done} of {total} windows done",
        "merging": "All windows done; putting the answer together…",
        "pending": "Waiting in the queue…",
        "processing": "Processing: {done} of {total} windows",
        "completed": "Done in {elapsed:.1f} s ({windows} window(s), engine {engine}).",
        "failed": "Failed: {error}",
        "cancelled": "The task was cancelled.",
        "not_found": "Task {task} was not found (expired, or another key's task).",
        "error": "Error: {error}",
        "bad_key": "A valid API key is required.",
        "not_handed_out": "This recording was not uploaded through this page; upload it again.",
        "partial": "(partial: {done} of {total} windows; "
        "the transcript below grows as they finish)",
        "st_engine": "Engine",
        "st_ready": "Ready",
        "st_yes": "yes",
        "st_no": "no",
        "st_backends": "Backends",
        "st_queue": "Queue",
        "st_completed": "completed",
        "st_processing": "processing",
        "st_waiting": "waiting",
        "st_total_time": "total processing time",
        "st_none": "none (embedded CPU engine)",
        "st_healthy": "healthy",
        "st_down": "down",
        # The login page (shown only when the service has API keys).
        "login_title": "Step-Audio: log in",
        "login_intro": "This service needs an API key. Enter yours to use the page; "
        "it is kept in this browser until you log out.",
        "login_key": "API key",
        "login_submit": "Log in",
        "login_wrong": "That key is not valid. Check it and try again.",
        "login_cross_site": "This login did not come from this site's own form.",
        "logout": "Log out",
        "logout_back": "Back to the page",
    },
    "zh": {
        "title": "Step-Audio：转写、摘要、翻译、问答",
        "intro": "上传或录制一段音频，选择需要的功能，点击 **运行**。"
        "任意时长的音频都可以处理；长音频在后台以任务方式运行，可通过页面地址重新打开。",
        "language": "界面语言",
        "tab_process": "处理",
        "tab_status": "服务状态",
        "audio": "音频（上传或麦克风录音）",
        "audio_info": "音频信息",
        "mode": "需要做什么？",
        "mode_s2t": "转写 + 摘要",
        "mode_asr": "逐字转写",
        "mode_understand": "提问",
        "mode_translate": "翻译",
        "mode_summarize": "摘要",
        "question": "关于这段音频的问题",
        "target_lang": "目标语言",
        "instruction": "附加指令（可选）",
        "advanced": "高级设置",
        "max_tokens": "每次模型调用的最大 token 数",
        "temperature": "温度（选择模式时自动设为该模式的常用值；0 为确定性输出）",
        "thinking": "回答前先让模型思考",
        "segment": "分段时长（秒，0 为自动）",
        "diarize": "区分说话人（A、B……）",
        "speakers": "谁说了什么",
        "as_task": "作为后台任务运行（长音频自动启用）",
        "run": "运行",
        "progress": "进度",
        "answer": "回答",
        "thinking_box": "推理过程",
        "transcript": "带时间戳的转写",
        "summary": "摘要",
        "downloads": "下载（txt、srt、vtt、json）",
        "task": "任务 ID（分享页面地址即可重新打开）",
        "refresh": "刷新",
        "no_audio": "请先上传或录制音频。",
        "info_line": "**{duration}** · {format} / {codec} · {rate} Hz · {channels} 声道 · {size}",
        "info_windows": "此模式下约分为 **{windows}** 个窗口处理。",
        "info_task": "长音频：将作为后台任务运行。",
        "starting": "正在开始…",
        "decoding": "正在读取音频…",
        "windows": "已完成 {done} / {total} 个窗口",
        "merging": "所有窗口已完成，正在汇总回答…",
        "pending": "排队等待中…",
        "processing": "处理中：已完成 {done} / {total} 个窗口",
        "completed": "完成，用时 {elapsed:.1f} 秒（{windows} 个窗口，引擎 {engine}）。",
        "failed": "失败：{error}",
        "cancelled": "任务已取消。",
        "not_found": "找不到任务 {task}（已过期，或属于其他密钥）。",
        "error": "错误：{error}",
        "bad_key": "需要有效的 API 密钥。",
        "not_handed_out": "此录音不是通过本页面上传的，请重新上传。",
        "partial": "（部分结果：{done} / {total} 个窗口，下方转写随窗口完成而增加）",
        "st_engine": "引擎",
        "st_ready": "可用",
        "st_yes": "是",
        "st_no": "否",
        "st_backends": "后端",
        "st_queue": "队列",
        "st_completed": "已完成",
        "st_processing": "处理中",
        "st_waiting": "等待中",
        "st_total_time": "总处理时间",
        "st_none": "无（内置 CPU 引擎）",
        "st_healthy": "正常",
        "st_down": "不可用",
        "login_title": "Step-Audio：登录",
        "login_intro": "本服务需要 API 密钥。输入密钥后即可使用页面；"
        "密钥保存在此浏览器中，直到退出登录。",
        "login_key": "API 密钥",
        "login_submit": "登录",
        "login_wrong": "密钥无效，请检查后重试。",
        "login_cross_site": "此登录请求并非来自本站的登录表单。",
        "logout": "退出登录",
        "logout_back": "返回页面",
    },
}


def t(lang: str, key: str, **values: object) -> str:
    """The text for ``key`` in ``lang`` (English where a language lacks it)."""
    table = TEXTS.get(lang, TEXTS["en"])
    text = table.get(key) or TEXTS["en"][key]
    return text.format(**values) if values else text


def pick_language(accept_language: str | None, asked: str | None = None) -> str:
    """``?lang=`` first, else the first of the browser's languages we have, else English."""
    if asked in LANGUAGES:
        return asked
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "en"
