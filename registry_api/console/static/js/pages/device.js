// One device (#/device/<code>): its fields as the mirror holds them, its on-chain trail (registration, life-cycle
// moves, inspections, updates, each with its transaction and block), and its audit against the chain (the mirror's
// fields compared with the trail replayed, the storage proof). Registrars of the owning org get the life-cycle and
// inspection forms; each write is followed until confirmed, then the page reloads from the mirror.
import { get, post, followOperation, newKey, loadReferences, untilMirrored } from "../api.js";
import { h, replace, errorBox, notice, table, pager, kv, select, badge, hash, operationLine, labelled } from "../ui.js";

const TRAIL_LIMIT = 20;
const NO_REPORT = `0x${"0".repeat(64)}`;
// The moves the contract allows from each status (DeviceRegistry._nextStatus); the API refuses the others.
const MOVES = {
  planned: ["activate", "retire"],
  active: ["suspend", "upgrade", "replace", "retire"],
  suspended: ["resume", "replace", "retire"],
};
const INSPECTABLE = ["active", "suspended"];
const EVENT_TITLES = {
  DeviceRegistered: "登记 Registered",
  DeviceLifecycleChanged: "生命周期 Life cycle",
  DeviceInspected: "巡检 Inspection",
  DeviceUpdated: "变更 Updated",
};

const unixDate = (seconds) => new Date(seconds * 1000).toISOString().replace(".000Z", "Z");
const microDegrees = (value) => (value / 1e6).toFixed(6);

function describe(event, districtName) {
  const a = event.args || {};
  const note = a.note ? ` — ${a.note}` : "";
  switch (event.event) {
    case "DeviceRegistered":
      return `${a.status} in ${districtName(a.district)} at ${microDegrees(a.lat)}, ${microDegrees(a.lon)}; built ${unixDate(a.builtAt).slice(0, 10)}`;
    case "DeviceLifecycleChanged":
      return `${a.action}: ${a.fromStatus} → ${a.toStatus}${a.replacedBy ? ` by ${a.replacedBy}` : ""}${note}`;
    case "DeviceInspected":
      return `${a.result} at ${unixDate(a.inspectedAt)}${a.reportHash && a.reportHash !== NO_REPORT ? ` report ${a.reportHash}` : ""}${note}`;
    case "DeviceUpdated":
      return `district ${districtName(a.district)}, at ${microDegrees(a.lat)}, ${microDegrees(a.lon)}`;
    default: {
      const { codeHash: _hash, ...rest } = a;
      return JSON.stringify(rest);
    }
  }
}

const verdict = (ok) => badge(ok ? "verified" : "mismatch");
const shown = (value) => (value === null || value === undefined ? "—" : typeof value === "object" ? JSON.stringify(value) : String(value));

function auditView(audit) {
  const proof = audit.checks.filter((c) => ["account_proof", "storage_proof", "proven_state"].includes(c.name));
  return [
    h("p", { id: "audit-verdict" }, verdict(audit.verified), ` at the mirror's checkpoint, block ${audit.block_number} `, hash(audit.block_hash)),
    kv([
      ["storage proof", proof.length ? [verdict(proof.every((c) => c.ok)), ` eth_getProof under state root `, hash(audit.state_root)] : "not proved"],
      ["trail", `${audit.trail.count} event${audit.trail.count === 1 ? "" : "s"} read from the chain (${audit.contract} ${audit.address})`],
      audit.failed.length ? ["failed checks", audit.failed.join(", ")] : null,
    ]),
    h(
      "ul",
      { class: "audit-checks" },
      audit.checks.map((check) =>
        h(
          "li",
          { dataset: { check: check.name, ok: String(check.ok) } },
          verdict(check.ok),
          " ",
          h("strong", {}, check.name),
          " ",
          h("span", { class: "muted" }, check.message),
          check.fields.length
            ? h(
                "details",
                { open: !check.ok },
                h("summary", {}, `${check.fields.length} field${check.fields.length === 1 ? "" : "s"}`),
                table(
                  [
                    { title: "Field", value: (f) => f.field },
                    { title: "Chain (expected)", value: (f) => h("code", {}, shown(f.expected)) },
                    { title: "Mirror (actual)", value: (f) => h("code", {}, shown(f.actual)) },
                    { title: "", value: (f) => verdict(f.ok) },
                  ],
                  check.fields,
                ),
              )
            : null,
        ),
      ),
    ),
  ];
}

export async function render(view, { args, me }) {
  const code = args[0] || "";
  let alive = true;
  const fields = h("section", { class: "card", id: "device-fields" });
  const outcome = h("div", { id: "device-write", "aria-live": "polite" });
  const actions = h("section", { id: "device-actions" });
  const trail = h("section", { class: "card", id: "device-trail" }, h("h2", {}, "链上轨迹 On-chain trail"));
  const trailBody = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const audit = h("section", { class: "card", id: "device-audit" }, h("h2", {}, "审计 Audit against the chain"));
  const auditBody = h("div", {}, h("p", { class: "muted" }, "Auditing…"));
  trail.append(trailBody);
  audit.append(auditBody);
  replace(view, h("h1", {}, "设备 Device ", h("code", {}, code)), h("p", {}, h("a", { href: "#/ledger" }, "‹ Ledger")));

  let refs, device;
  try {
    [refs, device] = await Promise.all([loadReferences(), get(`/v1/devices/${encodeURIComponent(code)}`)]);
  } catch (exc) {
    view.append(errorBox(exc));
    return;
  }
  view.append(fields, outcome, actions, trail, audit);

  let trailOffset = 0;
  let trailCount = 0;

  function showFields() {
    replace(
      fields,
      kv([
        ["Code", h("code", { id: "device-code" }, device.code)],
        ["Type", device.type || `#${device.type_id}`],
        ["Owner", device.owner_org],
        ["District", refs.districtName(device.district)],
        ["Location", `${device.location.lat}, ${device.location.lon}`],
        ["Built on", device.built_at],
        ["Status", h("span", { id: "device-status" }, badge(device.status))],
        device.replaced_by ? ["Replaced by", h("a", { href: `#/device/${encodeURIComponent(device.replaced_by)}` }, device.replaced_by)] : null,
        ["Last inspected", device.last_inspected_at],
        ["Attributes", h("pre", { id: "device-attributes" }, JSON.stringify(device.attributes, null, 2))],
        ["Attributes hash", h("code", {}, device.attributes_hash)],
        ["Registration tx", h("code", { id: "device-tx" }, device.tx_hash)],
        ["Registration block", String(device.block_number)],
        ["Last changed in block", String(device.updated_block)],
      ]),
    );
  }

  async function loadTrail(offset = trailOffset) {
    try {
      const page = await get(`/v1/devices/${encodeURIComponent(code)}/history`, { limit: TRAIL_LIMIT, offset });
      if (!alive) return;
      trailOffset = offset;
      trailCount = page.count;
      const rows = table(
        [
          { title: "Event", value: (e) => EVENT_TITLES[e.event] || e.event },
          { title: "Details", value: (e) => describe(e, refs.districtName) },
          { title: "Tx", value: (e) => hash(e.tx_hash) },
          { title: "Block", value: (e) => String(e.block_number) },
          { title: "Time", value: (e) => e.time },
          { title: "Signer", value: (e) => hash(e.sender) },
        ],
        page.data,
        { empty: "No event yet." },
      );
      rows.querySelectorAll?.("tbody tr").forEach((tr, i) => Object.assign(tr.dataset, { event: page.data[i].event, tx: page.data[i].tx_hash }));
      replace(trailBody, rows, pager({ offset, limit: TRAIL_LIMIT, count: page.count, onPage: loadTrail }));
    } catch (exc) {
      if (alive) replace(trailBody, errorBox(exc));
    }
  }

  async function loadAudit() {
    replace(auditBody, h("p", { class: "muted" }, "Auditing…"));
    try {
      const answer = await get(`/v1/audit/records/device/${encodeURIComponent(code)}`, { limit: 1 });
      if (alive) replace(auditBody, auditView(answer), h("button", { class: "secondary", type: "button", onclick: loadAudit }, "Audit again"));
    } catch (exc) {
      if (alive) replace(auditBody, errorBox(exc), h("button", { class: "secondary", type: "button", onclick: loadAudit }, "Audit again"));
    }
  }

  // A write: POST, follow the operation to confirmed, wait until the mirror has the new event, then reload.
  async function write(form, path, body) {
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    replace(outcome, h("p", { class: "muted" }, "Sending…"));
    try {
      const accepted = await post(path, body, { idempotencyKey: form.dataset.key });
      form.dataset.key = newKey();
      replace(outcome, operationLine({ id: accepted.operation_id, status: accepted.status }));
      const before = trailCount;
      const op = await followOperation(accepted.operation_id, (next) => alive && replace(outcome, operationLine(next)));
      await untilMirrored(async () => !alive || (await get(`/v1/devices/${encodeURIComponent(code)}/history`, { limit: 1 })).count > before);
      if (!alive) return;
      device = await get(`/v1/devices/${encodeURIComponent(code)}`);
      replace(outcome, operationLine(op), notice(`${form.dataset.what} confirmed in block ${op.block_number}.`));
      showFields();
      showActions();
      await Promise.all([loadTrail(0), loadAudit()]);
    } catch (exc) {
      if (exc.code !== "NETWORK") form.dataset.key = newKey();
      if (alive) replace(outcome, errorBox(exc));
    } finally {
      button.disabled = false;
    }
  }

  function lifecycleForm() {
    const moves = MOVES[device.status] || [];
    if (!moves.length) return h("p", { class: "muted" }, `No life-cycle move is left from ${device.status}.`);
    const action = select("action", moves, { value: moves[0] });
    const replacedBy = h("input", { name: "replaced_by", size: 24, autocomplete: "off" });
    const replacedField = labelled("Replaced by", replacedBy);
    const note = h("input", { name: "note", size: 30, maxlength: 1000 });
    const toggle = () => (replacedField.hidden = action.value !== "replace");
    action.addEventListener("change", toggle);
    toggle();
    const form = h(
      "form",
      { class: "row", id: "lifecycle-form", dataset: { key: newKey(), what: "Life-cycle change" } },
      labelled("Action", action),
      replacedField,
      labelled("Note", note),
      h("button", { type: "submit" }, "Change life cycle"),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const body = { action: action.value, note: note.value };
      if (action.value === "replace") body.replaced_by = replacedBy.value.trim();
      write(form, `/v1/devices/${encodeURIComponent(code)}/lifecycle`, body);
    });
    return form;
  }

  function inspectionForm() {
    if (!INSPECTABLE.includes(device.status)) return h("p", { class: "muted" }, `A ${device.status} device is not inspected.`);
    const result = select("result", ["passed", "issues", "failed"], { value: "passed" });
    const now = new Date(Date.now() - 60_000 - new Date().getTimezoneOffset() * 60_000);
    const at = h("input", { name: "inspected_at", type: "datetime-local", value: now.toISOString().slice(0, 16) });
    const report = h("input", { name: "report_hash", size: 30, placeholder: "0x… (optional)", pattern: "0x[0-9a-fA-F]{64}" });
    const note = h("input", { name: "note", size: 30, maxlength: 1000 });
    const form = h(
      "form",
      { class: "row", id: "inspection-form", dataset: { key: newKey(), what: "Inspection" } },
      labelled("Result", result),
      labelled("Inspected at", at),
      labelled("Report hash", report),
      labelled("Inspection note", note),
      h("button", { type: "submit" }, "Record inspection"),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const when = at.value ? new Date(at.value) : null;
      const body = { result: result.value, inspected_at: when && !isNaN(when) ? when.toISOString() : at.value, note: note.value };
      if (report.value.trim()) body.report_hash = report.value.trim();
      write(form, `/v1/devices/${encodeURIComponent(code)}/inspections`, body);
    });
    return form;
  }

  function showActions() {
    const owner = me && me.org_code === device.owner_org;
    if (!owner || !(me.roles || []).includes("REGISTRAR")) {
      replace(actions, h("p", { class: "muted" }, `Only registrars of ${device.owner_org} change this device.`));
      return;
    }
    replace(
      actions,
      h("div", { class: "card" }, h("h2", {}, "生命周期 Life cycle"), lifecycleForm()),
      h("div", { class: "card" }, h("h2", {}, "巡检 Record an inspection"), inspectionForm()),
    );
  }

  showFields();
  showActions();
  loadTrail(0);
  loadAudit();
  return () => {
    alive = false;
  };
}
