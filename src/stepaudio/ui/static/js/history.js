// The History view: the key's tasks (GET /api/tasks), reopened, cancelled or deleted.

import { call } from "./api.js";
import { lang, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);

function button(text, label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "link";
  b.textContent = text;
  b.setAttribute("aria-label", label);
  b.addEventListener("click", onClick);
  return b;
}

export async function refresh(open) {
  const list = await call("api/tasks?limit=100");
  const body = $("history").querySelector("tbody");
  $("history-empty").hidden = list.tasks.length > 0;
  $("history").hidden = list.tasks.length === 0;
  const when = new Intl.DateTimeFormat(lang() === "zh" ? "zh-CN" : "en", { dateStyle: "short", timeStyle: "short" });
  body.replaceChildren(
    ...list.tasks.map((task) => {
      const row = document.createElement("tr");
      const cells = [
        task.filename,
        t(`mode_${task.params.mode}`),
        t(`status_${task.status}`),
        when.format(new Date(task.created_at)),
      ].map((text) => Object.assign(document.createElement("td"), { textContent: text }));
      const actions = document.createElement("td");
      const group = Object.assign(document.createElement("div"), { className: "row" });
      group.append(button(t("open"), `${t("open")} ${task.filename}`, () => open(task.task_id)));
      const ended = ["completed", "failed", "cancelled"].includes(task.status);
      // DELETE cancels a running task; a finished one is removed from the list by it too.
      group.append(
        button(ended ? t("delete") : t("cancel"), `${ended ? t("delete") : t("cancel")} ${task.filename}`, async () => {
          if (ended && !confirm(t("confirm_delete"))) return;
          await call(`api/task/${encodeURIComponent(task.task_id)}${ended ? "?purge=true" : ""}`, { method: "DELETE" });
          await refresh(open);
        }),
      );
      actions.append(group);
      row.append(...cells, actions);
      return row;
    }),
  );
}

/** The key's saved voices, each with a delete button. */
export async function refreshVoices() {
  const { voices } = await call("api/voices");
  $("voices-empty").hidden = voices.length > 0;
  $("voices").replaceChildren(
    ...voices.map((voice) => {
      const item = document.createElement("li");
      const remove = button(t("delete"), t("delete_voice", { name: voice.name }), async () => {
        if (!confirm(t("confirm_delete_voice", { name: voice.name }))) return;
        await call(`api/voices/${encodeURIComponent(voice.voice_id)}`, { method: "DELETE" });
        await refreshVoices();
      });
      item.append(`${voice.name} `, remove);
      return item;
    }),
  );
}
