// 目录 Catalog: full-text search with facets (GET /v1/catalog), and an entry's page (#/catalog/<id>) with its
// versions, lineage and, for another org's entry, a request for access (POST /v1/sharing-requests).
import { get, post, followOperation, untilMirrored } from "../api.js";
import { h, replace, errorBox, notice, table, pager, kv, field, select, formValues, operationLine, badge, hash } from "../ui.js";

const PAGE_SIZE = 20;
const VERSIONS_PAGE = 10;
const REQUESTS_PAGE = 10;
const INDEX_WAIT_MS = 15_000; // a confirmed request shows in the mirror a block or two later
const FILTERS = ["q", "classification", "grade", "owner", "share_condition", "form", "status", "device"];
const FACETS = [
  ["classification", "分类 Classification"],
  ["grade", "分级 Grade"],
  ["share_condition", "共享条件 Share condition"],
  ["form", "共享形式 Form"],
  ["owner", "提供单位 Owner"],
];
export const LABELS = {
  unconditional: "无条件共享 unconditional",
  conditional: "有条件共享 conditional",
  not_shareable: "不予共享 not shareable",
  raw: "原始 raw",
  desensitized: "脱敏 desensitized",
  result_only: "仅结果 result only",
  draft: "草稿 draft",
  published: "已发布 published",
  deprecated: "已废止 deprecated",
};
const label = (value) => LABELS[value] || value;
const gradeLabel = (value) => `${value} 级 grade ${value}`;

export function render(view, ctx) {
  return ctx.args.length ? renderEntry(view, ctx, ctx.args[0]) : renderSearch(view, ctx);
}

// The filters of the hash query, as GET /v1/catalog takes them.
function filtersOf(query) {
  const filters = {};
  for (const name of FILTERS) if (query.get(name)) filters[name] = query.get(name);
  return filters;
}

function catalogHash(filters) {
  const q = new URLSearchParams(Object.entries(filters).filter(([, v]) => v !== undefined && v !== null && v !== ""));
  return `#/catalog${q.toString() ? `?${q}` : ""}`;
}

function renderSearch(view, { query, navigate }) {
  const filters = filtersOf(query);
  const offset = Math.max(0, Number(query.get("offset")) || 0);
  let alive = true;

  const words = h("input", { name: "q", type: "search", value: filters.q || "", placeholder: "过车, 空气质量, pm25 …", size: 40 });
  const status = select("status", ["draft", "published", "deprecated"].map((s) => [s, label(s)]), { any: "any status", value: filters.status || "" });
  const submit = h("button", { type: "submit" }, "Search");
  const form = h(
    "form",
    { class: "card row", id: "catalog-search", role: "search" },
    h("div", { class: "grow" }, field("Search", words)),
    field("Status", status),
    submit,
    Object.keys(filters).length ? h("a", { href: "#/catalog", id: "catalog-clear" }, "Clear all") : null,
  );
  const facets = h("aside", { class: "facets", id: "catalog-facets", "aria-label": "facets" });
  const results = h("section", { class: "grow", id: "catalog-results", "aria-label": "results" }, h("p", { class: "muted" }, "Searching…"));

  status.addEventListener("change", () => form.requestSubmit());
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = catalogHash({ ...filters, q: words.value.trim(), status: status.value, offset: undefined });
    if (next === window.location.hash) load();
    else window.location.hash = next;
  });

  async function load() {
    submit.disabled = true;
    try {
      const answer = await get("/v1/catalog", { ...filters, limit: PAGE_SIZE, offset });
      if (!alive) return;
      replace(facets, facetLists(answer.facets, filters));
      replace(
        results,
        h("p", { id: "catalog-count", dataset: { count: answer.count } }, `${answer.count.toLocaleString()} entries`, filters.q ? ` for “${filters.q}”` : ""),
        entriesTable(answer.data),
        pager({ offset, limit: PAGE_SIZE, count: answer.count, onPage: (o) => navigate("catalog", [], { ...filters, offset: o || undefined }) }),
      );
    } catch (exc) {
      if (alive) replace(results, errorBox(exc));
    } finally {
      submit.disabled = false;
    }
  }

  replace(view, h("h1", {}, "目录 Catalog"), form, h("div", { class: "row catalog-layout" }, facets, results));
  load();
  return () => {
    alive = false;
  };
}

// One list per facet: each value a link that adds it to the filters (or, selected, removes it), with its count.
function facetLists(facets, filters) {
  return FACETS.map(([name, title]) => {
    const values = facets[name] || [];
    return h(
      "section",
      { class: "facet", "aria-label": title, dataset: { facet: name } },
      h("h3", {}, title),
      values.length
        ? h(
            "ul",
            {},
            values.map(({ value, count }) => {
              const selected = filters[name] === value;
              const text = name === "grade" ? gradeLabel(value) : label(value);
              return h(
                "li",
                {},
                h(
                  "a",
                  {
                    href: catalogHash({ ...filters, [name]: selected ? undefined : value }),
                    class: selected ? "selected" : null,
                    "aria-current": selected ? "true" : null,
                    dataset: { value },
                  },
                  text,
                ),
                " ",
                h("span", { class: "muted count" }, count.toLocaleString()),
                selected ? h("a", { href: catalogHash({ ...filters, [name]: undefined }), class: "clear", title: "remove this filter" }, " ✕") : null,
              );
            }),
          )
        : h("p", { class: "muted" }, "—"),
    );
  });
}

function entriesTable(entries) {
  return table(
    [
      { title: "#", value: (e) => e.id },
      { title: "Title", value: (e) => h("a", { href: `#/catalog/${e.id}` }, e.title) },
      { title: "Classification", value: (e) => e.classification },
      { title: "Grade", value: (e) => e.grade },
      { title: "Share condition", value: (e) => label(e.share_condition) },
      { title: "Forms", value: (e) => e.forms.map(label).join(", ") },
      { title: "Owner", value: (e) => e.owner_org || "—" },
      { title: "Status", value: (e) => badge(e.status) },
      { title: "Version", value: (e) => e.version },
    ],
    entries,
    { empty: "No entry matches." },
  );
}

function renderEntry(view, { me, query }, id) {
  let alive = true;
  const base = `/v1/catalog/${encodeURIComponent(id)}`;
  const head = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const lineage = h("section", { class: "card", id: "entry-lineage", "aria-label": "lineage" });
  const versions = h("section", { class: "card", id: "entry-versions", "aria-label": "versions" });
  const access = h("section", { class: "card", id: "entry-access", "aria-label": "access" });
  replace(view, h("p", {}, h("a", { href: "#/catalog" }, "‹ 目录 Catalog")), head, lineage, versions, access);

  async function loadVersions(offset) {
    try {
      const answer = await get(`${base}/versions`, { limit: VERSIONS_PAGE, offset });
      if (!alive) return;
      replace(
        versions,
        h("h2", {}, "版本 Versions"),
        table(
          [
            { title: "Version", value: (v) => v.version },
            { title: "Title", value: (v) => v.title },
            { title: "Grade", value: (v) => v.grade },
            { title: "Share condition", value: (v) => label(v.share_condition) },
            { title: "Forms", value: (v) => v.forms.map(label).join(", ") },
            { title: "Version hash", value: (v) => hash(v.version_hash) },
            { title: "Transaction", value: (v) => hash(v.tx_hash) },
            { title: "Block", value: (v) => v.block_number },
            { title: "Time", value: (v) => v.time },
          ],
          answer.data,
        ),
        pager({ offset, limit: VERSIONS_PAGE, count: answer.count, onPage: loadVersions }),
      );
    } catch (exc) {
      if (alive) replace(versions, h("h2", {}, "版本 Versions"), errorBox(exc));
    }
  }

  (async () => {
    let entry;
    try {
      entry = await get(base);
    } catch (exc) {
      if (alive) replace(head, h("h1", {}, `Catalog entry ${id}`), errorBox(exc));
      return;
    }
    if (!alive) return;
    document.title = `${entry.title} · 目录链`;
    replace(head, entryCard(entry));
    loadVersions(Math.max(0, Number(query.get("versions")) || 0));
    get(`${base}/lineage`)
      .then((answer) => alive && replace(lineage, lineageCard(answer)))
      .catch((exc) => alive && replace(lineage, h("h2", {}, "血缘 Lineage"), errorBox(exc)));
    replace(access, accessCard(entry, me, () => alive));
  })();
  return () => {
    alive = false;
  };
}

function entryCard(entry) {
  const fields = Array.isArray(entry.schema?.fields) ? entry.schema.fields : null;
  return h(
    "section",
    { class: "card", id: "entry-detail", "aria-label": "entry" },
    h("h1", {}, entry.title, " ", badge(entry.status)),
    kv([
      ["Entry", String(entry.id)],
      ["Owner", entry.owner_org],
      ["Classification", h("a", { href: catalogHash({ classification: entry.classification }) }, entry.classification)],
      ["Grade", gradeLabel(entry.grade)],
      ["Share condition", label(entry.share_condition)],
      ["Forms", entry.forms.map(label).join(", ")],
      ["Version", entry.version],
      ["Version hash", hash(entry.version_hash)],
      ["Schema hash", hash(entry.schema_hash)],
      ["Filed", [hash(entry.tx_hash), ` block ${entry.block_number}`]],
      ["Last change", [hash(entry.updated_tx_hash), ` block ${entry.updated_block}`]],
    ]),
    h("h2", {}, "字段 Schema"),
    fields
      ? table(
          [
            { title: "Field", value: (f) => h("code", {}, f.name) },
            { title: "Type", value: (f) => f.type || "" },
            { title: "Personal", value: (f) => (f.personal ? "yes" : "") },
            { title: "Masking", value: (f) => f.mask || "" },
            { title: "Unit", value: (f) => f.unit || "" },
          ],
          fields,
        )
      : h("pre", {}, JSON.stringify(entry.schema, null, 2)),
  );
}

function lineageCard(answer) {
  const refs = (items, kind) =>
    table(
      [
        {
          title: kind === "device" ? "Device" : "Entry",
          value: (r) => (r.kind === "device" ? h("a", { href: `#/device/${encodeURIComponent(r.ref)}` }, r.ref) : h("a", { href: `#/catalog/${r.ref}` }, `#${r.ref}`)),
        },
        { title: kind === "device" ? "Type" : "Title", value: (r) => r.title || "—" },
        { title: "Owner", value: (r) => r.owner_org || "—" },
        { title: "Status", value: (r) => (r.status ? badge(r.status) : h("span", { class: "muted" }, "not mirrored")) },
      ],
      items,
      { empty: "None." },
    );
  return [
    h("h2", {}, "血缘 Lineage"),
    [
      ["Producing devices", answer.devices, "device"],
      ["Upstream entries", answer.upstream, "entry"],
      ["Derived entries", answer.downstream, "entry"],
    ].map(([title, items, kind]) => h("section", { "aria-label": title }, h("h3", {}, title), refs(items, kind))),
  ];
}

// The org's own entry: the requests for it. Another org's: a request form (if it may be shared) and its requests.
function accessCard(entry, me, alive) {
  const own = me && entry.owner_org === me.org_code;
  const list = h("div", { id: "entry-requests" });
  const loadRequests = async (offset = 0) => {
    try {
      const answer = await get("/v1/sharing-requests", { entry: entry.id, requester: own ? undefined : me?.org_code, limit: REQUESTS_PAGE, offset });
      if (!alive()) return answer;
      replace(
        list,
        table(
          [
            { title: "Request", value: (r) => `#${r.id}` },
            { title: "Requester", value: (r) => r.requester_org || r.requester },
            { title: "Form", value: (r) => label(r.form) },
            { title: "Purpose", value: (r) => r.purpose },
            { title: "Days", value: (r) => r.duration_days },
            { title: "Status", value: (r) => badge(r.expired ? "expired" : r.status) },
            { title: "Approvals", value: (r) => `${r.approvals} / ${r.approvals_needed}` },
            { title: "Requested", value: (r) => r.requested_at },
          ],
          answer.data,
          { empty: own ? "No request for this entry yet." : "Your organisation has not asked for this entry." },
        ),
        pager({ offset, limit: REQUESTS_PAGE, count: answer.count, onPage: loadRequests }),
      );
      return answer;
    } catch (exc) {
      if (alive()) replace(list, errorBox(exc));
      return null;
    }
  };
  loadRequests();
  const title = h("h2", {}, own ? "共享申请 Requests for this entry" : "申请共享 Request access");
  if (own) return [title, list];
  if (entry.share_condition === "not_shareable") return [title, notice("不予共享: this entry is not shareable; no request can be made."), list];
  if (entry.status !== "published") return [title, h("p", { class: "muted" }, `This entry is ${entry.status}: only published entries can be requested.`), list];

  const status = h("div", { id: "access-status" });
  const button = h("button", { type: "submit" }, "Request access");
  const days = h("input", { name: "duration_days", type: "number", min: 1, step: 1, required: true, size: 6 });
  days.defaultValue = "90";
  const form = h(
    "form",
    { id: "access-form", class: "row" },
    field("Form", select("form", entry.forms.map((f) => [f, label(f)]), { value: entry.forms[0] })),
    h("div", { class: "grow" }, field("Purpose", h("input", { name: "purpose", required: true, maxlength: 1000, placeholder: "用途 what the data is for" }))),
    field("Duration (days)", days),
    button,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = formValues(form);
    button.disabled = true;
    replace(status, h("p", { class: "muted" }, "Sending…"));
    try {
      const before = (await get("/v1/sharing-requests", { entry: entry.id, requester: me?.org_code, limit: 1 })).count;
      const accepted = await post("/v1/sharing-requests", { entry_id: entry.id, form: values.form, purpose: values.purpose || "", duration_days: Number(values.duration_days) });
      const op = await followOperation(accepted.operation_id, (o) => alive() && replace(status, operationLine(o)));
      if (!alive()) return;
      replace(status, operationLine(op), notice(entry.share_condition === "unconditional" ? "Requested and granted at once (无条件共享)." : "Requested: it now waits for the owner's approvers."));
      const listed = async () => {
        const answer = await loadRequests(0);
        return !answer || answer.count > before;
      };
      await untilMirrored(listed, { timeoutMs: INDEX_WAIT_MS, pollMs: 500, alive });
      form.reset(); // back to the defaults: the first form, 90 days
    } catch (exc) {
      if (alive()) replace(status, errorBox(exc));
    } finally {
      button.disabled = false;
    }
  });
  return [title, h("p", { class: "muted" }, `Ask ${entry.owner_org} for one form of this entry; the owner's approvers sign their decision.`), form, status, h("h3", {}, "Your requests"), list];
}
