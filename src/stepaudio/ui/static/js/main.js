// The page: four views over the public API. Nothing here is trusted by the service: the
// page can do only what its login's key can do through the API.

import { LANGS, pickLanguage, setLanguage, translate } from "./i18n.js";
import * as history from "./history.js";
import * as live from "./live.js";
import * as process from "./process.js";
import * as status from "./status.js";

const VIEWS = ["process", "live", "history", "status"];

function show(view) {
  if (!VIEWS.includes(view)) view = "process";
  for (const name of VIEWS) {
    const tab = document.getElementById(`tab-${name}`);
    tab.setAttribute("aria-selected", String(name === view));
    document.getElementById(`view-${name}`).hidden = name !== view;
  }
  const shown = {
    history: () => Promise.all([history.refresh(openTask), history.refreshVoices()]),
    status: () => status.refresh(),
  }[view];
  shown?.().catch((error) => process.showError(error.message));
}

function openTask(taskId) {
  const address = new URL(location.href);
  address.searchParams.set("task", taskId);
  address.hash = "process";
  history_(address);
  show("process");
  process.reopen(taskId);
}

function history_(address) {
  window.history.replaceState(null, "", address);
}

function applyLanguage(lang) {
  setLanguage(lang);
  translate();
  document.getElementById("page-lang").value = lang;
  process.fillLanguages();
}

async function main() {
  applyLanguage(pickLanguage());
  document.documentElement.classList.remove("loading");
  const forms = process.setUp();
  live.setUp();
  document.getElementById("page-lang").addEventListener("change", (event) => {
    if (LANGS.includes(event.target.value)) applyLanguage(event.target.value);
  });
  document.getElementById("history-refresh").addEventListener("click", () => history.refresh(openTask));
  document.getElementById("status-refresh").addEventListener("click", () => status.refresh());
  window.addEventListener("hashchange", () => show(location.hash.slice(1)));
  show(location.hash.slice(1));
  const taskId = new URLSearchParams(location.search).get("task");
  if (taskId) process.reopen(taskId);
  try {
    const info = await status.refresh();
    // Controls only where the engine honours them: reasoning needs an engine that reasons.
    if (info.features?.thinking) document.body.dataset.thinks = "1";
    if (info.features?.logout) document.getElementById("logout").hidden = false;
    forms.showFields();
  } catch {
    /* the status view says what went wrong when it is opened */
  }
}

main();
