// 判定 Resolver: ask POST /v1/resolve as the logged-in org and show the decision, its exact reason, the form, the
// constraints, the proof, and a permit's capability token decoded (and its ES256 signature checked against the
// resolver's JWKS with WebCrypto, as a data holder checks it).
import { api, get } from "../api.js";
import { h, replace, errorBox, kv, field, select, badge, hash } from "../ui.js";

const ACTIONS = [
  ["read_raw", "read_raw · 原始数据"],
  ["read_desensitized", "read_desensitized · 脱敏数据"],
  ["compute", "compute · 可用不可见计算"],
];
const TIME_CLAIMS = new Set(["iat", "nbf", "exp"]);

export function render(view, { query }) {
  let alive = true;
  const entry = h("input", { name: "entry_id", type: "number", min: 1, step: 1, required: true, value: query.get("entry") || "", size: 8 });
  const action = select("action", ACTIONS, { value: query.get("action") || "read_desensitized" });
  const algorithm = h("select", { name: "algorithm_id" });
  const epsilon = h("input", { name: "epsilon", type: "number", step: "any", min: 0, placeholder: "optional", size: 8 });
  const computeOnly = h("div", { class: "row", id: "resolver-compute" }, field("Algorithm", algorithm), field("Epsilon", epsilon));
  const hint = h("p", { class: "muted", id: "resolver-admitted" });
  const button = h("button", { type: "submit" }, "Resolve");
  const form = h(
    "form",
    { class: "card", id: "resolver-form" },
    h("h1", {}, "判定 Resolver"),
    h("p", { class: "muted" }, "May your organisation do this with a catalog entry, now? The resolver answers from the mirror's last block; a permit carries a capability token for the data holder."),
    h("div", { class: "row" }, field("Entry id", entry), field("Action", action), computeOnly, button),
    hint,
  );
  const result = h("div", { id: "resolver-result" });
  replace(view, form, result);

  let listed = [];
  const algorithmsReady = get("/v1/algorithms", { status: "listed", limit: 200 })
    .then((answer) => (listed = answer.data))
    .catch(() => (listed = []));

  // The algorithm choices: those the entry admits first, then the other listed ones (to see a deny).
  async function fillAlgorithms() {
    await algorithmsReady;
    const id = Number(entry.value);
    let admitted = [];
    if (id >= 1) {
      try {
        admitted = (await get(`/v1/catalog/${id}/algorithms`, { limit: 200 })).data.map((a) => ({ ...a.algorithm, usable: a.usable }));
      } catch {
        admitted = [];
      }
    }
    if (!alive) return;
    const chosen = algorithm.value || query.get("algorithm") || "";
    const admittedIds = new Set(admitted.map((a) => a.id));
    const others = listed.filter((a) => !admittedIds.has(a.id));
    replace(
      algorithm,
      admitted.map((a) => h("option", { value: a.id }, `${a.id} · ${a.name} ${a.version} (admitted${a.usable ? "" : ", not usable"})`)),
      others.map((a) => h("option", { value: a.id }, `${a.id} · ${a.name} ${a.version} (not admitted)`)),
    );
    if (chosen && [...algorithm.options].some((o) => o.value === String(chosen))) algorithm.value = String(chosen);
    replace(hint, id >= 1 && action.value === "compute" ? `Entry ${id} admits: ${admitted.map((a) => `${a.id} ${a.name}`).join(", ") || "no algorithm"}.` : "");
  }

  const showCompute = () => {
    computeOnly.hidden = action.value !== "compute";
    fillAlgorithms();
  };
  action.addEventListener("change", showCompute);
  entry.addEventListener("change", fillAlgorithms);
  showCompute();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { entry_id: Number(entry.value), action: action.value };
    if (action.value === "compute") {
      if (algorithm.value) body.algorithm_id = Number(algorithm.value);
      if (epsilon.value) body.epsilon = Number(epsilon.value);
    }
    button.disabled = true;
    replace(result, h("p", { class: "muted" }, "Deciding…"));
    try {
      const answer = await api("POST", "/v1/resolve", { body });
      if (alive) replace(result, decisionView(answer));
      if (answer.capability && alive) verifyToken(answer.capability.token).then((node) => alive && replace(document.getElementById("token-signature"), node));
    } catch (exc) {
      if (alive) replace(result, errorBox(exc));
    } finally {
      button.disabled = false;
    }
  });
  if (query.get("entry") && query.get("run")) form.requestSubmit();
  return () => {
    alive = false;
  };
}

function decisionView(d) {
  const c = d.constraints;
  const p = d.proof;
  return [
    h(
      "section",
      { class: "card decision", "aria-label": "decision", dataset: { decision: d.decision } },
      h("h2", {}, "Decision ", h("span", { class: `badge big ${d.decision}`, id: "decision" }, d.decision)),
      kv([
        ["Reason", d.reason ? h("code", { id: "decision-reason" }, d.reason) : h("span", { class: "muted", id: "decision-reason" }, "— (permitted)")],
        ["Message", d.message],
        ["Form", h("span", { id: "decision-form" }, d.form)],
        ["Entry", h("a", { href: `#/catalog/${d.entry_id}` }, `#${d.entry_id}`)],
        ["Action", d.action],
        ["Organisation", `${d.org} · ${d.account}`],
        d.algorithm_id ? ["Algorithm", [String(d.algorithm_id), " code ", hash(d.algorithm_code_hash)]] : null,
      ]),
    ),
    h(
      "section",
      { class: "card", "aria-label": "constraints" },
      h("h2", {}, "约束 Constraints"),
      kv([
        ["Purpose", c.purpose],
        ["Expires", c.expires_at],
        c.admitted_algorithms ? ["Admitted algorithms", c.admitted_algorithms.join(", ") || "none"] : null,
        c.k !== null ? ["k (minimum group)", String(c.k)] : null,
        c.epsilon_budget !== null ? ["Epsilon budget", String(c.epsilon_budget)] : null,
        c.remaining_epsilon !== null ? ["Epsilon left", String(c.remaining_epsilon)] : null,
        c.max_epsilon_per_job !== null ? ["Max epsilon per job", String(c.max_epsilon_per_job)] : null,
      ]),
    ),
    h(
      "section",
      { class: "card", "aria-label": "proof", id: "decision-proof" },
      h("h2", {}, "证明 Proof"),
      kv([
        ["Basis", p.basis],
        ["Grant", p.grant_id === null ? null : h("span", { id: "proof-grant" }, String(p.grant_id))],
        ["Grant form", p.grant_form],
        ["Request tx", p.request_tx_hash ? hash(p.request_tx_hash) : null],
        ["Approval txs", p.approval_tx_hashes.length ? p.approval_tx_hashes.map((t) => h("div", {}, hash(t))) : null],
        ["Grant tx", p.grant_tx_hash ? hash(p.grant_tx_hash) : null],
        ["Grant block", p.grant_block === null ? null : String(p.grant_block)],
        ["Entry version", hash(p.entry_version_hash)],
        ["Decided at block", h("span", { id: "proof-block" }, String(p.block.number), " ", hash(p.block.hash))],
        ["Chain time", p.chain_time],
      ]),
    ),
    d.capability ? capabilityView(d.capability) : null,
  ];
}

function capabilityView(cap) {
  let header = null;
  let claims = null;
  let problem = null;
  try {
    [header, claims] = cap.token.split(".").slice(0, 2).map((part) => JSON.parse(new TextDecoder().decode(base64url(part))));
  } catch (exc) {
    problem = `the token does not decode: ${exc.message}`;
  }
  return h(
    "section",
    { class: "card", "aria-label": "capability token", id: "capability" },
    h("h2", {}, "能力令牌 Capability token"),
    h("p", { class: "muted" }, "An ES256 JWT for the data holder, who verifies it offline against ", h("a", { href: "/v1/resolver/jwks", target: "_blank", rel: "noopener" }, "GET /v1/resolver/jwks"), " before serving data. Its issuance left a usage receipt."),
    kv([
      ["Key id", cap.kid],
      ["Token id", cap.jti],
      ["Issued", cap.issued_at],
      ["Expires", cap.expires_at],
      ["Receipt", [String(cap.receipt_id), " ", hash(cap.receipt_hash)]],
      ["Signature", h("span", { id: "token-signature" }, "checking…")],
    ]),
    problem ? errorBox({ code: "TOKEN_UNDECODABLE", message: problem }) : null,
    header ? [h("h3", {}, "Header"), claimsTable(header, "token-header")] : null,
    claims ? [h("h3", {}, "Claims"), claimsTable(claims, "token-claims")] : null,
    h("details", {}, h("summary", {}, "The token"), h("pre", { class: "token" }, cap.token)),
  );
}

function claimsTable(object, id) {
  return h(
    "dl",
    { class: "kv claims", id },
    Object.entries(object).map(([key, value]) => [
      h("dt", {}, h("code", {}, key)),
      h("dd", { dataset: { claim: key } }, typeof value === "object" ? JSON.stringify(value) : String(value), TIME_CLAIMS.has(key) && typeof value === "number" ? h("span", { class: "muted" }, ` (${new Date(value * 1000).toISOString()})`) : null),
    ]),
  );
}

function base64url(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "=");
  return Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
}

// The signature as a data holder checks it: the JWKS key named by `kid`, ECDSA P-256 over "header.payload"
// (a JWS ES256 signature is r || s, the form WebCrypto takes).
async function verifyToken(token) {
  try {
    if (!globalThis.crypto?.subtle) return h("span", { class: "muted" }, "not checked here (WebCrypto needs https or localhost); check it against the JWKS");
    const [headerPart, payloadPart, signaturePart] = token.split(".");
    const header = JSON.parse(new TextDecoder().decode(base64url(headerPart)));
    const jwks = await get("/v1/resolver/jwks", {}, { token: null });
    const jwk = jwks.keys.find((k) => k.kid === header.kid);
    if (!jwk) return badge("unknown key");
    const key = await crypto.subtle.importKey("jwk", { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, ext: true }, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
    const ok = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, base64url(signaturePart), new TextEncoder().encode(`${headerPart}.${payloadPart}`));
    return h("span", {}, h("span", { class: `badge ${ok ? "verified" : "failed"}`, id: "token-verdict" }, ok ? "verified" : "invalid"), ` ES256 against JWKS key ${jwk.kid}`);
  } catch (exc) {
    return errorBox({ code: exc.code || "VERIFY_FAILED", message: exc.message });
  }
}
