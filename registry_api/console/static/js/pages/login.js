// Log in with an API token (`dirchain tokens issue`, or a demo org's token in var/dev/credentials.json).
// The token is checked against GET /v1/me, which answers with the org, account and on-chain roles it acts as.
import { api, session } from "../api.js";
import { h, replace, errorBox, kv, field } from "../ui.js";

export function render(view, { query, navigate }) {
  const token = h("input", { name: "token", type: "password", autocomplete: "off", placeholder: "dct_…", size: 60, required: true });
  const status = h("div");
  const form = h(
    "form",
    { class: "card", id: "login-form" },
    h("h1", {}, "Log in"),
    h("p", { class: "muted" }, "Paste the API token of your organisation. It stays in this tab only and is sent to this API only."),
    h("div", { class: "row" }, h("div", { class: "grow" }, field("API token", token)), h("button", { type: "submit" }, "Log in")),
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    replace(status);
    try {
      const me = await api("GET", "/v1/me", { token: token.value.trim() });
      session.set(token.value.trim(), me);
      replace(status, kv([["org", `${me.org_name} (${me.org_code})`], ["roles", me.roles.join(", ")]]));
      const next = query.get("next");
      if (next && !next.startsWith("/login")) window.location.hash = `#${next}`;
      else navigate("map");
    } catch (exc) {
      replace(status, errorBox(exc.status === 401 ? { ...exc, code: exc.code, message: "this token is not valid (unknown, revoked or expired)" } : exc));
    }
  });
  replace(view, form);
  token.focus();
}
