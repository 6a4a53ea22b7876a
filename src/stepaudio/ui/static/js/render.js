// A result (the JSON /api/process and tasks return) shown on the page.

import { t } from "./i18n.js";

/** 75.26 -> "1:15.3"; 3725.0 -> "1:02:05.0": to the tenth of a second. */
export function clock(seconds) {
  const tenths = Math.round(seconds * 10);
  const h = Math.floor(tenths / 36000);
  const m = Math.floor((tenths % 36000) / 600);
  const s = ((tenths % 600) / 10).toFixed(1).padStart(4, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/** "A" -> "Speaker A" (unnamed voices get letters); a name stays a name. */
export function speakerLabel(label, names) {
  if (names[label]) return names[label];
  return /^[A-Z]{1,2}$/.test(label) ? t("speaker", { label }) : label;
}

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

/** The transcript as a list: a time that seeks the player, the speaker, the words. */
export function renderSegments(list, segments, { names = {}, onSeek }) {
  const order = [...new Set(segments.map((s) => s.speaker).filter(Boolean))];
  // Where more than one language was heard, each line says which it is in.
  const tongues = new Set(segments.map((s) => s.language).filter(Boolean));
  list.replaceChildren(
    ...segments.map((segment) => {
      const time = el("button", {
        type: "button",
        className: "link ts",
        textContent: `[${clock(segment.start)} → ${clock(segment.end)}]`,
      });
      // A hint, not the name: the name stays the time one sees (WCAG 2.5.3, label in name).
      time.title = t("seek", { t: clock(segment.start) });
      time.addEventListener("click", () => onSeek(segment.start));
      const parts = [time, " "];
      if (segment.speaker) {
        const who = el("span", { className: "speaker", textContent: speakerLabel(segment.speaker, names) });
        who.dataset.i = String(order.indexOf(segment.speaker) % 6);
        parts.push(who, ": ");
      }
      if (tongues.size > 1) parts.push(el("span", { className: "lang", textContent: segment.language || "" }), " ");
      parts.push(segment.text.trim());
      const line = el("li", {}, ...parts);
      // Read aloud in its own language by a screen reader (WCAG 3.1.2).
      if (segment.language) line.lang = segment.language;
      return line;
    }),
  );
  return order;
}

/** One name field per speaker; onRename(label, name) when one changes. With onRemember
 * (a task's result), a button that saves the speaker's voice under the name. */
export function renderSpeakerNames(box, labels, names, onRename, onRemember = null) {
  box.replaceChildren(
    ...labels.map((label, i) => {
      const id = `speaker-name-${i}`;
      const caption = el("label", { htmlFor: id, className: "speaker", textContent: t("speaker_name", { label: speakerLabel(label, {}) }) });
      caption.dataset.i = String(i % 6);
      const input = el("input", { id, type: "text", maxLength: 40, value: names[label] || "" });
      input.placeholder = speakerLabel(label, {});
      input.addEventListener("change", () => onRename(label, input.value.trim()));
      const row = el("p", {}, caption, " ", input);
      if (onRemember) {
        const said = el("span", { className: "muted", role: "status" });
        const button = el("button", { type: "button", className: "secondary", textContent: t("remember") });
        button.addEventListener("click", async () => {
          const name = input.value.trim();
          if (!name) {
            said.textContent = t("name_first");
            input.focus();
            return;
          }
          try {
            await onRemember(label, name);
            said.textContent = t("remembered", { name });
          } catch (error) {
            said.textContent = error.message;
          }
        });
        row.append(" ", button, " ", said);
      }
      return row;
    }),
  );
}

/** The result with the page's speaker names in place of the letters (for downloads). */
export function withNames(result, names) {
  const copy = structuredClone(result);
  for (const segment of copy.segments || []) {
    if (segment.speaker && names[segment.speaker]) segment.speaker = names[segment.speaker];
  }
  return copy;
}
