// 审批 Approvals: the sharing requests awaiting the logged-in org's decision on its own catalog entries. An approver
// signs the EIP-712 decision in this page (keystore decrypted here, or an injected wallet); the signer is recovered
// here before anything is sent, the org's account relays it, the contract verifies it again, and the grant shows
// once the entry's grade's number of approvals is reached.
import { get, post, followOperation, untilMirrored } from "../api.js";
import { h, replace, badge, hash, errorBox, notice, pager, kv, field, select, operationLine } from "../ui.js";
import { createSigner, signerPanel, recoverSigner, SignerError } from "../signer.js";

const LIMIT = 10;
const MIRROR_POLL_MS = 400;
const MIRROR_TIMEOUT_MS = 30_000;
const DECIDED = [
  ["granted", "granted 已批准"],
  ["active", "active 有效"],
  ["expired", "expired 已过期"],
  ["refused", "refused 已拒绝"],
  ["revoked", "revoked 已撤销"],
];

const unixTime = (seconds) => new Date(Number(seconds) * 1000).toISOString().replace(".000Z", "Z");
const entryLabel = (r) => [h("code", {}, `#${r.entry_id}`), " ", r.entry_title || ""];
const statusOf = (r) => (r.status === "granted" ? (r.active ? "active" : "expired") : r.status);
const progress = (r) => h("span", { class: "approvals" }, `${r.approvals} / ${r.approvals_needed}`);
const LEAD_COLUMNS = [
  ["#", (r) => h("code", {}, String(r.id))],
  ["Entry 目录", entryLabel],
  ["Requester 申请方", (r) => r.requester_org || hash(r.requester)],
  ["Form 形式", (r) => r.form],
];

// A table whose rows carry ids (`#request-<id>`) so a row can be found and updated.
function requestTable(columns, rows, idPrefix, empty) {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, columns.map(([title]) => h("th", {}, title)))),
    h("tbody", {}, rows.map((r) => h("tr", { id: `${idPrefix}${r.id}`, dataset: { status: r.status } }, columns.map(([, value]) => h("td", {}, value(r)))))),
  );
}

export function render(view, { me }) {
  const signer = createSigner();
  let alive = true;
  let pendingOffset = 0;
  let decidedOffset = 0;
  let panelTurn = 0; // a newer decision panel makes the older one's late answers moot
  const pendingBox = h("div", { id: "inbox-pending" }, h("p", { class: "muted" }, "Loading…"));
  const decidedBox = h("div", { id: "inbox-decided" });
  const decidedStatus = select("decided-status", DECIDED, { value: "granted" });
  decidedStatus.id = "decided-status";
  const panel = h("section", { class: "card", id: "inbox-decision", "aria-label": "Decision", hidden: true });

  // One page of GET /v1/sharing-requests into `box`: the shared leading columns, then `columns`, and a pager.
  async function loadInto(box, query, columns, idPrefix, empty, onPage) {
    try {
      const page = await get("/v1/sharing-requests", { ...query, limit: LIMIT });
      if (!alive) return;
      replace(
        box,
        requestTable([...LEAD_COLUMNS, ...columns], page.data, idPrefix, empty),
        pager({ offset: query.offset, limit: LIMIT, count: page.count, onPage }),
      );
    } catch (exc) {
      if (alive) replace(box, errorBox(exc));
    }
  }

  function loadPending(offset = pendingOffset) {
    pendingOffset = offset;
    const actions = (r) =>
      h(
        "div",
        { class: "row inbox-actions" },
        h("button", { type: "button", onclick: () => openDecision(r, "approve") }, "Approve"),
        h("button", { type: "button", class: "secondary", onclick: () => openDecision(r, "refuse") }, "Refuse"),
      );
    const columns = [
      ["Purpose 用途", (r) => r.purpose],
      ["Days", (r) => String(r.duration_days)],
      ["Approvals 审批", progress],
      ["Status", (r) => badge(r.status)],
      ["", actions],
    ];
    const empty = `No sharing request awaits ${me?.org_code || "your org"}'s decision.`;
    return loadInto(pendingBox, { pending_for_me: true, offset }, columns, "request-", empty, loadPending);
  }

  function loadDecided(offset = decidedOffset) {
    decidedOffset = offset;
    const columns = [
      ["Status", (r) => badge(statusOf(r))],
      ["Approvals 审批", progress],
      ["Signed by 签名人", (r) => r.decisions.map((d) => h("div", {}, `${d.decision} `, hash(d.approver)))],
      ["Expires / reason", (r) => r.expires_at || r.refusal_reason || r.revocation_reason || "—"],
      ["Tx", (r) => hash(r.grant_tx_hash || r.decisions.at(-1)?.tx_hash || r.tx_hash)],
    ];
    const query = { owner: me?.org_code, status: decidedStatus.value, offset };
    return loadInto(decidedBox, query, columns, "decided-", "Nothing decided with this status yet.", loadDecided);
  }

  // The decision panel: what will be signed, then sign, recover, relay, follow, and show the result.
  function openDecision(request, decision) {
    const turn = ++panelTurn;
    const current = () => alive && turn === panelTurn;
    const body = h("div");
    const close = h("button", { type: "button", class: "secondary", onclick: () => (panel.hidden = true) }, "Close");
    const title = decision === "approve" ? "批准 Approve" : "拒绝 Refuse";
    replace(panel, h("div", { class: "row" }, h("h2", { class: "grow" }, `${title} request #${request.id}`), close), body);
    panel.hidden = false;
    panel.scrollIntoView({ block: "nearest" });
    if (!signer.address) {
      replace(body, errorBox(new SignerError("NO_SIGNING_KEY", "load an approver's keystore or connect a wallet first (Signing key above)", "approver")));
      return;
    }
    if (decision === "approve") {
      prepare(body, request, decision, "", current);
      return;
    }
    const reason = h("textarea", { id: "refusal-reason", name: "reason", maxlength: 1000, required: true });
    const go = h("button", { type: "submit" }, "Prepare refusal");
    const form = h("form", {}, field("Refusal reason 拒绝理由", reason), h("div", { class: "row" }, go));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      go.disabled = true;
      prepare(body, request, decision, reason.value.trim(), current);
    });
    replace(body, form);
    reason.focus();
  }

  async function prepare(body, request, decision, reason, current) {
    const approver = signer.address;
    replace(body, h("p", { class: "muted" }, `Fetching the typed data for ${approver}…`));
    let typed;
    try {
      typed = await get(`/v1/sharing-requests/${request.id}/approval-typed-data`, { approver, decision, reason });
    } catch (exc) {
      if (current()) replace(body, errorBox(exc));
      return;
    }
    if (!current()) return;
    const { domain, message } = typed;
    const sign = h("button", { type: "button", id: "sign-and-submit" }, "Sign and submit 签名提交");
    const outcome = h("div", { id: "decision-outcome" });
    replace(
      body,
      h("p", {}, "You are signing this EIP-712 message (", h("code", {}, typed.primaryType), "):"),
      kv([
        ["Decision", `${decision} (${message.decision})`],
        ["Request", `#${message.requestId}`],
        ["Entry", entryLabel(request)],
        ["Form", request.form],
        ["Requester", request.requester_org || request.requester],
        ["Purpose", request.purpose],
        decision !== "approve" ? ["Reason", reason] : null,
        ["Reason hash", h("code", {}, message.reasonHash)],
        ["Approver", h("code", {}, approver)],
        ["Nonce", String(message.nonce)],
        ["Deadline", `${message.deadline} (${unixTime(message.deadline)})`],
        ["Domain", `${domain.name} v${domain.version}, chain ${domain.chainId}`],
        ["Verifying contract", h("code", {}, domain.verifyingContract)],
      ]),
      h("div", { class: "row" }, sign),
      outcome,
    );
    sign.addEventListener("click", async () => {
      sign.disabled = true;
      try {
        await signAndRelay(request, decision, reason, typed, approver, outcome, current);
      } catch (exc) {
        if (current()) outcome.append(errorBox(exc));
        sign.disabled = false;
      }
    });
  }

  async function signAndRelay(request, decision, reason, typed, approver, outcome, current) {
    replace(outcome, h("p", { class: "muted" }, "Signing…"));
    const signature = await signer.signTypedData(typed);
    const recovered = recoverSigner(typed, signature);
    if (recovered.toLowerCase() !== approver.toLowerCase()) {
      replace(outcome);
      throw new SignerError("SIGNER_MISMATCH", `the signature recovers to ${recovered}, not the approver ${approver}: nothing was sent`, "signature");
    }
    replace(outcome, notice("Signature recovered in this page: signer ", h("code", { id: "recovered-signer" }, recovered), " = approver ✓"));
    const path = `/v1/sharing-requests/${request.id}/${decision === "approve" ? "approvals" : "refusals"}`;
    const payload = { approver, signature, nonce: typed.message.nonce, deadline: typed.message.deadline };
    if (decision !== "approve") payload.reason = reason;
    const accepted = await post(path, payload);
    const line = h("div", { id: "decision-operation" });
    outcome.append(line);
    const op = await followOperation(accepted.operation_id, (o) => replace(line, operationLine(o)));
    replace(line, operationLine(op));
    if (!current()) return;
    outcome.append(notice("Relayed and confirmed on-chain: tx ", hash(op.tx_hash), ` in block ${op.block_number}`));
    const mirrored = await waitMirrored(request.id, op.tx_hash);
    if (!current()) return;
    outcome.append(requestState(mirrored));
    if (mirrored.status === "granted") outcome.append(await grantCard(request.id));
    loadPending();
    loadDecided();
  }

  // The request once the indexer has mirrored the decision carried by `txHash`.
  // (Past the wait, or once the page is left, the request as last read.)
  async function waitMirrored(id, txHash) {
    let request = null;
    const probe = async () => {
      request = await get(`/v1/sharing-requests/${id}`);
      return request.decisions.some((d) => d.tx_hash === txHash);
    };
    await untilMirrored(probe, { timeoutMs: MIRROR_TIMEOUT_MS, pollMs: MIRROR_POLL_MS, alive: () => alive });
    return request;
  }

  function requestState(r) {
    return h(
      "div",
      { id: "decision-state", class: "card" },
      kv([
        ["Request", `#${r.id}`],
        ["Status", badge(statusOf(r))],
        ["Approvals", progress(r)],
        ["Signed by", r.decisions.map((d) => h("div", {}, `${d.decision} `, h("code", {}, d.approver), " tx ", hash(d.tx_hash)))],
        r.refusal_reason ? ["Refusal reason", r.refusal_reason] : null,
      ]),
    );
  }

  async function grantCard(id) {
    try {
      const g = await get(`/v1/grants/${id}`);
      return h(
        "div",
        { id: "inbox-grant", class: "card" },
        h("h3", {}, "Grant 授权 ", badge(g.active ? "active" : statusOf(g))),
        kv([
          ["Grant", `#${g.id} to ${g.requester_org}`],
          ["Entry", entryLabel(g)],
          ["Form", g.form],
          ["Granted at", g.granted_at],
          ["Expires at", g.expires_at],
          ["Approvers", g.approvers.map((a) => h("div", {}, h("code", {}, a)))],
          ["Grant tx", hash(g.grant_tx_hash)],
        ]),
      );
    } catch (exc) {
      return errorBox(exc);
    }
  }

  decidedStatus.addEventListener("change", () => loadDecided(0));
  replace(
    view,
    h("h1", {}, "审批 Approvals"),
    h(
      "p",
      { class: "muted" },
      `Sharing requests for ${me?.org_code || "your org"}'s catalog entries. An approver signs each decision with its own key in this page; `,
      `${me?.org_code || "the org"}'s account only relays the signature and the contract checks it again.`,
    ),
    signerPanel(signer),
    h("section", { class: "card", "aria-label": "Awaiting our decision" }, h("h2", {}, "待审批 Awaiting our decision"), pendingBox),
    panel,
    h(
      "section",
      { class: "card", "aria-label": "Our decisions and grants" },
      h("div", { class: "row" }, h("h2", { class: "grow" }, "已决定 Our decisions and grants"), field("Status", decidedStatus)),
      decidedBox,
    ),
  );
  loadPending();
  loadDecided();
  return () => {
    alive = false;
    signer.forget(); // leaving the page drops the key
  };
}
