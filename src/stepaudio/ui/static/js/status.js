// The Status view: GET /api/status (engine, its servers, the queue).

import { call } from "./api.js";
import { t } from "./i18n.js";

export async function refresh() {
  const status = await call("api/status");
  const engine = status.engine || {};
  const rows = [
    ["st_engine", engine.engine || status.model],
    ["st_model", status.model],
    ["st_ready", t(engine.ready ? "yes" : "no")],
    ["st_queue", t("st_queue_value", status.stats)],
  ];
  if (engine.backends) rows.push(["st_backends", engine.backends.map((b) => `${b.url || b.name}: ${b.healthy ? "✓" : "✗"}`).join(", ")]);
  const list = document.getElementById("status");
  list.replaceChildren(
    ...rows.flatMap(([key, value]) => [
      Object.assign(document.createElement("dt"), { textContent: t(key) }),
      Object.assign(document.createElement("dd"), { textContent: String(value ?? "–") }),
    ]),
  );
  return status;
}
