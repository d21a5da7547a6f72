// The ledger (台账): every device of the mirror, filtered by type, owner, status and district, a page at a time.
// The filters live in the hash query (#/ledger?type=camera.road&district=110105&offset=20), so a filtered view can
// be shared and reloaded.
import { DEVICE_STATUSES, get, loadReferences } from "../api.js";
import { h, replace, errorBox, table, pager, select, badge, hash, labelled } from "../ui.js";

const PAGE_SIZES = [10, 20, 50, 100];
const DEFAULT_LIMIT = 20;
const FILTERS = ["type", "owner", "status", "district"];

export async function render(view, { query, navigate }) {
  const state = Object.fromEntries(FILTERS.map((k) => [k, query.get(k) || ""]));
  const offset = Math.max(0, parseInt(query.get("offset") || "0", 10) || 0);
  const limit = PAGE_SIZES.includes(Number(query.get("limit"))) ? Number(query.get("limit")) : DEFAULT_LIMIT;
  const go = (changes) => {
    const next = { ...state, limit: limit === DEFAULT_LIMIT ? "" : limit, offset: "", ...changes };
    navigate("ledger", [], next);
  };

  const results = h("div", { id: "ledger-results" }, h("p", { class: "muted" }, "Loading…"));
  const filters = h("div", { class: "card row", id: "ledger-filters" });
  const search = h("form", { class: "row", id: "ledger-search" });
  replace(view, h("h1", {}, "台账 Ledger"), filters, results);

  let refs;
  try {
    refs = await loadReferences();
  } catch (exc) {
    replace(results, errorBox(exc));
    return;
  }
  const selects = {
    type: select("type", refs.rules.map((r) => r.type), { any: "any type", value: state.type }),
    owner: select("owner", refs.members.map((m) => [m.code, `${m.code} ${m.name}`]), { any: "any owner", value: state.owner }),
    status: select("status", DEVICE_STATUSES, { any: "any status", value: state.status }),
    district: select("district", refs.districts.map((d) => [String(d.code), `${d.name} ${d.code}`]), { any: "any district", value: state.district }),
  };
  const perPage = select("limit", PAGE_SIZES.map(String), { value: String(limit) });
  for (const [name, el] of Object.entries(selects)) el.addEventListener("change", () => go({ [name]: el.value }));
  perPage.addEventListener("change", () => go({ limit: perPage.value }));
  const code = h("input", { name: "code", placeholder: "BJ-CAMR-110105000001", size: 26, autocomplete: "off" });
  const found = h("div");
  search.addEventListener("submit", async (event) => {
    event.preventDefault();
    const wanted = code.value.trim();
    if (!wanted) return;
    replace(found);
    try {
      await get(`/v1/devices/${encodeURIComponent(wanted)}`);
      navigate("device", [wanted]);
    } catch (exc) {
      replace(found, errorBox(exc));
    }
  });
  replace(search, labelled("Find by code", code), h("button", { type: "submit", class: "secondary" }, "Find"), found);
  const active = FILTERS.some((k) => state[k]);
  replace(
    filters,
    labelled("Type", selects.type),
    labelled("Owner", selects.owner),
    labelled("Status", selects.status),
    labelled("District", selects.district),
    labelled("Per page", perPage),
    active ? h("a", { href: "#/ledger", id: "ledger-clear" }, "Clear filters") : null,
    h("div", { class: "grow" }),
    search,
  );

  try {
    const query = { ...state, limit, offset };
    const page = await get("/v1/devices", query);
    replace(
      results,
      h("p", { id: "ledger-count", "aria-live": "polite" }, `${page.count.toLocaleString()} device${page.count === 1 ? "" : "s"}`),
      table(
        [
          { title: "Code", value: (d) => h("a", { href: `#/device/${encodeURIComponent(d.code)}` }, d.code) },
          { title: "Type", value: (d) => d.type || `#${d.type_id}` },
          { title: "Owner", value: (d) => d.owner_org || "—" },
          { title: "District", value: (d) => refs.districtName(d.district) },
          { title: "Status", value: (d) => badge(d.status) },
          { title: "Built on", value: (d) => (d.built_at || "").slice(0, 10) },
          { title: "Registered in", value: (d) => [h("span", {}, `block ${d.block_number} `), hash(d.tx_hash)] },
        ],
        page.data,
        { empty: "No device matches these filters." },
      ),
      pager({ offset, limit, count: page.count, onPage: (next) => go({ offset: next || "" }) }),
    );
    results.querySelector("table")?.setAttribute("id", "ledger-table");
  } catch (exc) {
    replace(results, errorBox(exc));
  }
}
