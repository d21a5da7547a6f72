// Register one device (#/register): type and district from the API's lists, a code built from the type's code rule
// (suggested: prefix + district + the next free serial), location, build date, status and attributes. The POST
// carries an Idempotency-Key (a double click is one write); the operation is followed until confirmed, then the
// device is waited for in the mirror and linked. The API's refusals show with their code and the field at fault.
import { get, post, followOperation, newKey, session, loadReferences, untilMirrored } from "../api.js";
import { h, replace, errorBox, notice, select, operationLine, labelled } from "../ui.js";

const SERIAL_DIGITS = 6; // the city's convention: <prefix><6-digit district><6-digit serial>

function ruleText(rule) {
  const rest = rule.length - new TextEncoder().encode(rule.prefix).length;
  return `${rule.type} codes: ${rule.prefix} then ${rest} characters (${rule.charset.join(", ")}), e.g. ${rule.example}`;
}

// prefix + district + next serial, when the rule leaves exactly district + serial digits; else null.
async function suggestCode(rule, district) {
  const rest = rule.length - new TextEncoder().encode(rule.prefix).length;
  if (!rule.charset.includes("digits") || rest !== district.length + SERIAL_DIGITS) return null;
  const stem = `${rule.prefix}${district}`;
  const first = await get("/v1/devices", { type: rule.type, district, limit: 1 });
  let serial = first.count + 1;
  if (first.count > 0) {
    const last = await get("/v1/devices", { type: rule.type, district, limit: 1, offset: first.count - 1 });
    const code = last.data[0]?.code || "";
    if (code.startsWith(stem) && /^\d+$/.test(code.slice(stem.length))) serial = Math.max(serial, Number(code.slice(stem.length)) + 1);
  }
  const text = String(serial).padStart(SERIAL_DIGITS, "0");
  return text.length === SERIAL_DIGITS ? stem + text : null;
}

// The input an API error's field points at ("location.lat" -> the latitude input, "attributes.x" -> attributes).
function inputFor(form, fieldName) {
  if (!fieldName) return null;
  const name = { "location.lat": "lat", "location.lon": "lon", location: "lat" }[fieldName] || fieldName.split(/[.[]/)[0];
  return form.elements.namedItem(name);
}

export async function render(view) {
  const me = session.me();
  const status = h("div", { id: "register-status", "aria-live": "polite" });
  replace(view, h("h1", {}, "登记 Register a device"));
  let refs;
  try {
    refs = await loadReferences();
  } catch (exc) {
    view.append(errorBox(exc));
    return;
  }
  let alive = true;
  const rules = new Map(refs.rules.map((r) => [r.type, r]));
  const type = select("type", refs.rules.map((r) => r.type), { any: "— choose a type —" });
  const district = select("district", refs.districts.map((d) => [String(d.code), `${d.name} ${d.code}`]), { any: "— choose a district —" });
  const code = h("input", { name: "code", size: 28, autocomplete: "off", spellcheck: "false" });
  const codeHint = h("div", { class: "hint muted" }, "Choose a type to see how its codes are formed.");
  const suggest = h("button", { type: "button", class: "secondary", id: "suggest-code" }, "Suggest a code");
  const lat = h("input", { name: "lat", type: "number", step: "any", min: -90, max: 90, size: 12 });
  const lon = h("input", { name: "lon", type: "number", step: "any", min: -180, max: 180, size: 12 });
  const centre = h("button", { type: "button", class: "secondary", id: "use-centre" }, "Use the district's centre");
  const builtOn = h("input", { name: "built_at", type: "date", max: new Date().toISOString().slice(0, 10) });
  const initial = select("status", ["active", "planned"], { value: "active" });
  const attributes = h("textarea", { name: "attributes", rows: 5, spellcheck: "false", placeholder: '{"vendor": "海康威视", "model": "DS-2CD3T47G2"}' }, "{}");
  const attributesHint = h("div", { class: "hint muted" }, "A JSON object; no personal data (names, phone numbers, plates) goes on-chain.");
  const submit = h("button", { type: "submit" }, "Register");
  const form = h(
    "form",
    { class: "card", id: "register-form", novalidate: true },
    h("div", { class: "row" }, labelled("Type", type), labelled("District", district)),
    h("div", { class: "row" }, labelled("Code", code, { hint: codeHint }), suggest),
    h("div", { class: "row" }, labelled("Latitude", lat), labelled("Longitude", lon), centre),
    h("div", { class: "row" }, labelled("Built on", builtOn), labelled("Initial status", initial)),
    labelled("Attributes (JSON)", attributes, { hint: attributesHint }),
    h("div", { class: "row" }, submit),
  );
  if (me && !(me.roles || []).includes("REGISTRAR")) {
    view.append(notice(`${me.org_code} holds no REGISTRAR role: the API will refuse a registration.`));
  }
  view.append(form, status);

  const checkCode = () => {
    const rule = rules.get(type.value);
    if (!rule) return;
    const value = code.value.trim();
    const ok = new RegExp(rule.pattern).test(value);
    code.setAttribute("aria-invalid", value && !ok ? "true" : "false");
    replace(codeHint, value ? (ok ? "✓ fits the rule. " : "✗ does not fit the rule. ") : "", ruleText(rule));
  };
  // The suggestion goes into the placeholder (never into a field the user may be typing in); the button fills it.
  const fillSuggestion = async ({ fill = false } = {}) => {
    const rule = rules.get(type.value);
    checkCode();
    code.placeholder = rule ? rule.example : "";
    if (!rule || !district.value) return;
    try {
      const next = await suggestCode(rule, district.value);
      if (!alive || !next || rule !== rules.get(type.value)) return;
      code.placeholder = next;
      if (fill) {
        code.value = next;
        checkCode();
      }
    } catch (exc) {
      replace(status, errorBox(exc));
    }
  };
  type.addEventListener("change", () => fillSuggestion());
  district.addEventListener("change", () => fillSuggestion());
  code.addEventListener("input", checkCode);
  suggest.addEventListener("click", () => fillSuggestion({ fill: true }));
  centre.addEventListener("click", () => {
    const found = refs.districts.find((d) => String(d.code) === district.value);
    if (!found) return replace(status, errorBox({ code: "NO_DISTRICT", message: "choose a district first", field: "district" }));
    [lat.value, lon.value] = found.center.map((v) => v.toFixed(6));
  });
  attributes.addEventListener("input", () => attributes.setAttribute("aria-invalid", parseAttributes() instanceof Error ? "true" : "false"));

  function parseAttributes() {
    try {
      const value = JSON.parse(attributes.value.trim() || "{}");
      if (value === null || typeof value !== "object" || Array.isArray(value)) return new Error("attributes must be a JSON object {…}");
      return value;
    } catch (exc) {
      return new Error(`attributes are not valid JSON: ${exc.message}`);
    }
  }

  let key = newKey();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    form.querySelectorAll("[aria-invalid=true]").forEach((el) => el.setAttribute("aria-invalid", "false"));
    const attrs = parseAttributes();
    if (attrs instanceof Error) {
      attributes.setAttribute("aria-invalid", "true");
      replace(status, errorBox({ code: "INVALID_JSON", message: attrs.message, field: "attributes" }));
      return;
    }
    const number = (input) => (input.value.trim() === "" ? undefined : Number(input.value));
    const body = {
      code: code.value.trim(),
      type: type.value,
      district: district.value ? Number(district.value) : undefined,
      location: { lat: number(lat), lon: number(lon) },
      built_at: builtOn.value || undefined,
      status: initial.value,
      attributes: attrs,
    };
    submit.disabled = true;
    replace(status, h("p", { class: "muted" }, "Sending…"));
    try {
      const accepted = await post("/v1/devices", body, { idempotencyKey: key });
      key = newKey();
      replace(status, operationLine({ id: accepted.operation_id, status: accepted.status }));
      const op = await followOperation(accepted.operation_id, (next) => alive && replace(status, operationLine(next)));
      await untilMirrored(() =>
        get(`/v1/devices/${encodeURIComponent(body.code)}`).then(
          () => true,
          (exc) => (exc.status === 404 ? !alive : Promise.reject(exc)),
        ),
      );
      if (!alive) return;
      const link = h("a", { href: `#/device/${encodeURIComponent(body.code)}`, id: "registered-link" }, `Open ${body.code}`);
      replace(status, operationLine(op), notice(`Registered ${body.code} in block ${op.block_number}. `, link));
      code.value = "";
      fillSuggestion();
    } catch (exc) {
      if (exc.code !== "NETWORK") key = newKey(); // no answer: a retry must be the same write
      const at = inputFor(form, exc.field);
      if (at) at.setAttribute("aria-invalid", "true");
      if (alive) replace(status, errorBox(exc));
    } finally {
      submit.disabled = false;
    }
  });
  return () => {
    alive = false;
  };
}
