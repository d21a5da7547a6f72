// 审计 Audit: the mirror verified against the chain (GET /v1/audit/verify, AUDITOR role), one record's trail and
// proofs (GET /v1/audit/records/{kind}/{id}), the signed sharing decisions (GET /v1/audit/approvals), the deployed
// code against a rebuild (GET /v1/audit/code) and the printable activity report (GET /v1/audit/report).
// The long checks run in the background with their elapsed time shown: the page stays usable meanwhile.
import { get, download } from "../api.js";
import { h, replace, errorBox, kv, field, select, table, pager, badge, hash } from "../ui.js";

const KINDS = [
  ["device", "device · 设备 (code)"],
  ["catalog-entry", "catalog-entry · 目录 (id)"],
  ["sharing-request", "sharing-request · 共享申请 (id)"],
  ["algorithm", "algorithm · 算法 (id)"],
  ["project", "project · 联审项目 (id)"],
  ["carrier", "carrier · 载体 (code)"],
  ["member", "member · 成员单位 (org code)"],
];
const TRAIL_PAGE = 20;
const APPROVALS_PAGE = 20;

const okBadge = (ok, yes = "ok", no = "mismatch") => h("span", { class: `badge ${ok ? "ok" : "mismatch"}` }, ok ? yes : no);

// A section of the page: its accessible name, heading, explanation and content.
const card = (name, title, explanation, ...children) =>
  h("section", { class: "card", "aria-label": name }, h("h2", {}, title), h("p", { class: "muted" }, explanation), ...children);

// Run `task` showing "running… Ns" in `status` with the button disabled; the result (or the API's error) goes to
// `out`. Returns nothing: the page goes on while it runs, and a page left meanwhile drops the answer.
function runner(alive, timers) {
  return async (button, status, out, task, render) => {
    const started = Date.now();
    const tick = () => replace(status, h("span", { class: "running", role: "status" }, `running… ${Math.floor((Date.now() - started) / 1000)} s`));
    tick();
    const timer = setInterval(tick, 1000);
    timers.add(timer);
    button.disabled = true;
    try {
      const answer = await task();
      if (alive()) replace(out, render(answer));
      if (alive()) replace(status, h("span", { class: "muted" }, `done in ${((Date.now() - started) / 1000).toFixed(1)} s`));
    } catch (exc) {
      if (alive()) {
        replace(out, errorBox(exc));
        replace(status);
      }
    } finally {
      clearInterval(timer);
      timers.delete(timer);
      button.disabled = false;
    }
  };
}

export function render(view, { query, me }) {
  let live = true;
  const alive = () => live;
  const timers = new Set();
  const run = runner(alive, timers);
  const auditor = (me?.roles || []).includes("AUDITOR");

  replace(
    view,
    h("h1", {}, "审计 Audit"),
    h("p", { class: "muted" }, "Each check reads the chain itself and compares the service's mirror with it. An auditor who trusts nothing runs ", h("code", {}, "dirchain audit"), " against a node of its own."),
    mirrorCard(run, auditor),
    recordCard(run, query),
    approvalsCard(run),
    codeCard(run),
    reportCard(auditor),
  );
  return () => {
    live = false;
    for (const timer of timers) clearInterval(timer);
  };
}

function mirrorCard(run, auditor) {
  const status = h("span", { id: "verify-status" });
  const out = h("div", { id: "verify-result" });
  const button = h("button", { type: "button", id: "verify-run" }, "Verify the mirror");
  button.addEventListener("click", () => run(button, status, out, () => get("/v1/audit/verify"), verifyView));
  return card(
    "mirror verification",
    "镜像核验 Mirror against the chain",
    ["Every mirror table is rebuilt from the chain's logs up to the mirror's checkpoint and compared row by row (about a minute per million devices). AUDITOR role", auditor ? "." : ": your account does not hold it, the API will refuse."],
    h("div", { class: "row" }, button, status),
    out,
  );
}

function verifyView(v) {
  const bad = v.tables.filter((t) => !t.ok);
  return [
    h("p", { id: "verify-verdict" }, okBadge(v.ok, "verified", "mismatch"), ` ${v.tables.length - bad.length} of ${v.tables.length} tables agree with the chain at block ${v.block}`),
    kv([
      ["Checkpoint block", [String(v.block), " ", hash(v.block_hash)]],
      ["Events replayed", v.events.toLocaleString()],
      ["Blocks with rows", v.blocks.toLocaleString()],
      ["Mirror digest", hash(v.live_digest)],
      ["Chain digest", hash(v.chain_digest)],
      ["First divergent block", v.first_divergent_block === null ? "none" : String(v.first_divergent_block)],
      ["Divergent blocks", String(v.divergent_block_count)],
      ["Time", `rebuild ${v.rebuild_seconds} s, compare ${v.compare_seconds} s`],
    ]),
    table(
      [
        { title: "Table", value: (t) => h("code", {}, t.table) },
        { title: "Result", value: (t) => okBadge(t.ok) },
        { title: "Mirror rows", value: (t) => t.live_rows.toLocaleString() },
        { title: "Chain rows", value: (t) => t.chain_rows.toLocaleString() },
        { title: "Missing", value: (t) => t.missing },
        { title: "Extra", value: (t) => t.extra },
        { title: "Differing", value: (t) => t.differing },
      ],
      v.tables,
    ),
    bad.length ? [h("h3", {}, "First differences"), bad.map((t) => h("details", { open: true }, h("summary", {}, t.table), h("pre", {}, JSON.stringify(t.samples, null, 2))))] : null,
    v.divergent_blocks.length
      ? [h("h3", {}, "Divergent blocks"), table([{ title: "Block", value: (b) => b.number }, { title: "Mirror", value: (b) => hash(b.live) }, { title: "Chain", value: (b) => hash(b.chain) }], v.divergent_blocks)]
      : null,
  ];
}

function recordCard(run, query) {
  const kind = select("kind", KINDS, { value: query.get("kind") || "device" });
  const id = h("input", { name: "id", required: true, value: query.get("id") || "", placeholder: "BJ-CAMR-110105000001, 1, BJ-PSB …", size: 28 });
  const button = h("button", { type: "submit" }, "Audit record");
  const status = h("span", { id: "record-status" });
  const out = h("div", { id: "record-result" });
  const form = h("form", { class: "row" }, field("Kind", kind), field("Record id", id), button, status);
  const audit = (offset = 0) => {
    const path = `/v1/audit/records/${encodeURIComponent(kind.value)}/${encodeURIComponent(id.value.trim())}`;
    history.replaceState(null, "", `#/audit?${new URLSearchParams({ kind: kind.value, id: id.value.trim() })}`);
    run(button, status, out, () => get(path, { limit: TRAIL_PAGE, offset }), (answer) => recordView(answer, audit));
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    audit(0);
  });
  if (query.get("id")) queueMicrotask(() => audit(0));
  return card(
    "record audit",
    "记录审计 One record's trail",
    ["Every event that shaped the record, the mirror's row against the trail replayed, its hashes recomputed, and its contract storage proved with eth_getProof against the block's state root."],
    form,
    out,
  );
}

function recordView(r, onPage) {
  return [
    h("p", { id: "record-verdict" }, okBadge(r.verified, "verified", "failed"), ` ${r.kind} ${r.id}`, r.failed.length ? ` — failed: ${r.failed.join(", ")}` : ""),
    kv([
      ["Contract", [r.contract, " ", hash(r.address)]],
      ["Checkpoint block", [String(r.block_number), " ", hash(r.block_hash)]],
      ["State root", hash(r.state_root)],
    ]),
    h("h3", {}, "Checks"),
    table(
      [
        { title: "Check", value: (c) => h("code", {}, c.name) },
        { title: "Result", value: (c) => okBadge(c.ok, "ok", "failed") },
        {
          title: "Detail",
          value: (c) => [
            c.message,
            c.fields.some((f) => !f.ok)
              ? h("details", {}, h("summary", {}, "fields"), table([{ title: "Field", value: (f) => f.field }, { title: "Chain", value: (f) => JSON.stringify(f.expected) }, { title: "Mirror", value: (f) => JSON.stringify(f.actual) }, { title: "", value: (f) => okBadge(f.ok) }], c.fields))
              : null,
          ],
        },
      ],
      r.checks,
    ),
    h("h3", {}, `Trail (${r.trail.count} events)`),
    table(
      [
        { title: "Block", value: (e) => e.block_number },
        { title: "Time", value: (e) => new Date(e.block_time * 1000).toISOString() },
        { title: "Event", value: (e) => `${e.contract}.${e.event}` },
        { title: "Transaction", value: (e) => [hash(e.tx_hash), ` #${e.log_index}`] },
        { title: "Signer", value: (e) => hash(e.signer) },
        { title: "Approver", value: (e) => (e.approval ? [hash(e.approval.signer), " ", okBadge(e.approval.verified, "verified", "failed")] : "") },
        { title: "Arguments", value: (e) => h("details", {}, h("summary", {}, "args"), h("pre", {}, JSON.stringify(e.args, null, 2))) },
      ],
      r.trail.data,
    ),
    pager({ offset: r.trail.offset, limit: r.trail.limit, count: r.trail.count, onPage }),
  ];
}

function approvalsCard(run) {
  const request = h("input", { name: "request_id", type: "number", min: 1, step: 1, placeholder: "all", size: 6 });
  const button = h("button", { type: "submit" }, "Audit approvals");
  const status = h("span", { id: "approvals-status" });
  const out = h("div", { id: "approvals-result" });
  const form = h("form", { class: "row" }, field("Sharing request (optional)", request), button, status);
  const audit = (offset = 0) =>
    run(button, status, out, () => get("/v1/audit/approvals", { request_id: request.value || undefined, limit: APPROVALS_PAGE, offset }), (a) => approvalsView(a, audit));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    audit(0);
  });
  return card(
    "approvals audit",
    "审批审计 Signed sharing decisions",
    ["Each approval, refusal and revocation: the EIP-712 signer recovered and shown to be an approver of the owner org at that block; the mirror's rows against the logs."],
    form,
    out,
  );
}

function approvalsView(a, onPage) {
  return [
    h("p", { id: "approvals-verdict" }, okBadge(a.verified, "verified", "failed"), ` ${a.decisions_on_chain} decisions on the chain (blocks ${a.from_block}–${a.to_block}), ${a.mirror_rows} mirror rows, ${a.mirror_findings.length} findings`),
    a.mirror_findings.length
      ? table(
          [
            { title: "Mirror", value: (m) => badge(m.status) },
            { title: "Row", value: (m) => m.row_id ?? "—" },
            { title: "Block", value: (m) => `${m.block_number} #${m.log_index}` },
            { title: "Request", value: (m) => m.request_id },
            { title: "Differences", value: (m) => m.differences.map((d) => `${d.field}: ${d.mirror} ≠ ${d.chain}`).join("; ") },
          ],
          a.mirror_findings,
        )
      : null,
    table(
      [
        { title: "Block", value: (d) => `${d.block_number} #${d.log_index}` },
        { title: "Decision", value: (d) => d.decision },
        { title: "Request", value: (d) => d.request_id },
        { title: "Approver", value: (d) => hash(d.approver) },
        { title: "Signer recovered", value: (d) => hash(d.provenance?.signer) },
        { title: "Mirror", value: (d) => badge(d.mirror.status) },
        { title: "Result", value: (d) => okBadge(d.ok, "verified", "failed") },
      ],
      a.data,
      { empty: "No sharing decision in the range." },
    ),
    pager({ offset: a.offset, limit: a.limit || APPROVALS_PAGE, count: a.count, onPage }),
  ];
}

function codeCard(run) {
  const button = h("button", { type: "button", id: "code-run" }, "Audit deployed code");
  const status = h("span", { id: "code-status" });
  const out = h("div", { id: "code-result" });
  button.addEventListener("click", () => run(button, status, out, () => get("/v1/audit/code"), codeView));
  return card(
    "code audit",
    "合约代码 Deployed code",
    ["contracts/ rebuilt with the pinned solc and compared byte by byte with the chain (the first run compiles for a while)."],
    h("div", { class: "row" }, button, status),
    out,
  );
}

function codeView(c) {
  return [
    h("p", { id: "code-verdict" }, h("span", { class: `badge ${c.verdict === "mismatch" ? "mismatch" : "ok"}` }, c.verdict), ` compiler ${c.compiler.version}, block ${c.block_number}`),
    table(
      [
        { title: "Contract", value: (x) => x.name },
        { title: "Address", value: (x) => hash(x.address) },
        { title: "Code", value: (x) => h("span", { class: `badge ${x.ok ? "ok" : "mismatch"}` }, x.status) },
        { title: "Bytes", value: (x) => x.deployed_length.toLocaleString() },
        { title: "Problems", value: (x) => x.problems.join("; ") || "—" },
      ],
      c.contracts,
    ),
    c.sources.some((s) => s.status !== "same") ? table([{ title: "Source", value: (s) => s.path }, { title: "Status", value: (s) => badge(s.status) }], c.sources.filter((s) => s.status !== "same")) : null,
  ];
}

function reportCard(auditor) {
  const today = new Date(Date.now() + 8 * 3600_000).toISOString().slice(0, 10); // Beijing date
  const from = h("input", { name: "from", type: "date", required: true, value: `${today.slice(0, 8)}01` });
  const to = h("input", { name: "to", type: "date", required: true, value: today });
  const button = h("button", { type: "submit" }, "Download report");
  const status = h("div", { id: "report-status" });
  const form = h("form", { class: "row" }, field("From", from), field("To", to), button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    replace(status, h("span", { class: "muted running" }, "reading the chain…"));
    try {
      const name = await download("/v1/audit/report", { from: from.value, to: to.value, format: "html" }, `audit-report-${from.value}-${to.value}.html`);
      replace(status, h("span", { class: "muted" }, `saved ${name}`));
    } catch (exc) {
      replace(status, errorBox(exc));
    } finally {
      button.disabled = false;
    }
  });
  return card(
    "activity report",
    "审计报告 Who did what, and when",
    ["Every event of a time range (Beijing time) with the actor's org and roles at that moment, as one printable page. AUDITOR role", auditor ? "." : ": your account does not hold it."],
    form,
    status,
  );
}
