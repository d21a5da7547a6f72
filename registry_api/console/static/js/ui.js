// Small DOM helpers. Everything from the API goes in as text nodes or attributes, never as HTML: no XSS however
// a device's attributes or a catalog title are written.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "value") el.value = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const badge = (text) => h("span", { class: `badge ${String(text).toLowerCase()}` }, text);

export const shortHash = (value, keep = 10) =>
  value && value.length > keep + 6 ? `${value.slice(0, keep)}…${value.slice(-4)}` : value || "";

export const hash = (value) => h("code", { title: value || "" }, shortHash(value));

// The API's error as the user should see it: its stable code, its message and the field at fault.
export function errorBox(err) {
  return h(
    "div",
    { class: "error", role: "alert", dataset: { code: err.code || "ERROR" } },
    h("span", { class: "code" }, err.code || "ERROR"),
    err.message || String(err),
    err.field ? h("span", { class: "muted" }, ` (field: ${err.field})`) : null,
  );
}

export const notice = (...children) => h("div", { class: "notice", role: "status" }, ...children);

// A table from column specs {title, value(row) -> text or node}.
export function table(columns, rows, { empty = "Nothing here." } = {}) {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", {}, c.title)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c) => h("td", {}, c.value(row)))))),
  );
}

// Previous / next over a list answer {data, count}; onPage(offset) loads another page.
export function pager({ offset, limit, count, onPage }) {
  const last = Math.min(offset + limit, count);
  return h(
    "div",
    { class: "pager" },
    h("button", { class: "secondary", disabled: offset <= 0, onclick: () => onPage(Math.max(0, offset - limit)) }, "‹ Previous"),
    h("span", { class: "muted" }, count ? `${offset + 1}–${last} of ${count.toLocaleString()}` : "0 of 0"),
    h("button", { class: "secondary", disabled: last >= count, onclick: () => onPage(offset + limit) }, "Next ›"),
  );
}

export const kv = (pairs) =>
  h("dl", { class: "kv" }, pairs.filter(Boolean).map(([key, value]) => [h("dt", {}, key), h("dd", {}, value ?? "—")]));

export const field = (label, input) => h("label", {}, label, input);

// A label bound to its control by id (its text is the control's accessible name), with an optional hint below.
// Unlike `field`, a select's options do not become part of its name.
export function labelled(label, control, { hint = null } = {}) {
  control.id ||= `f-${Math.random().toString(36).slice(2, 10)}`;
  const parts = [h("label", { for: control.id }, label), control];
  if (hint) {
    hint.id ||= `${control.id}-hint`;
    control.setAttribute("aria-describedby", hint.id);
    parts.push(hint);
  }
  return h("div", { class: "field" }, parts);
}

// A select from [value, label] pairs (or plain values), with an "any" first option when `any` is given.
export function select(name, options, { any = null, value = "" } = {}) {
  const el = h("select", { name });
  if (any !== null) el.append(h("option", { value: "" }, any));
  for (const option of options) {
    const [v, text] = Array.isArray(option) ? option : [option, option];
    el.append(h("option", { value: v }, text));
  }
  el.value = value;
  return el;
}

// A form's named fields as an object, empty ones left out.
export function formValues(form) {
  const values = {};
  for (const [key, value] of new FormData(form).entries()) if (value !== "") values[key] = value;
  return values;
}

// The status of a write on its way: queued -> submitted -> mined -> confirmed, with its transaction.
export function operationLine(op) {
  return h(
    "div",
    { class: "operation", dataset: { status: op.status } },
    "operation ",
    h("code", {}, op.id),
    " ",
    badge(op.status),
    op.tx_hash ? [" tx ", hash(op.tx_hash)] : null,
    op.block_number ? ` block ${op.block_number}` : null,
  );
}
