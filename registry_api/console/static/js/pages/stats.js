// 考核 Assessment: the indicators of GET /v1/stats for a month, drawn with Chart.js (global `Chart`): devices on the
// ledger per district (by type) and per department (by status), registrations month by month, overdue inspections,
// the catalog by share condition and sharing requests by outcome; the monthly report as CSV or HTML.
import { DEVICE_STATUSES, get, download, loadReferences } from "../api.js";
import { h, replace, errorBox, kv, field, labelled, select, table } from "../ui.js";

const TREND_MONTHS = 6;
const SHARE = ["unconditional", "conditional", "not_shareable"];
const OUTCOMES = ["granted", "refused", "pending"];
const COLOURS = {
  planned: "#8aa4c8", active: "#18794e", suspended: "#d08a1c", replaced: "#7b61a8", retired: "#a0a7b1",
  unconditional: "#18794e", conditional: "#1f5fbf", not_shareable: "#c0262d",
  granted: "#18794e", refused: "#c0262d", pending: "#d08a1c",
};
const PALETTE = ["#1f5fbf", "#18794e", "#d08a1c", "#c0262d", "#7b61a8", "#0f8a8a", "#b5487d", "#5c6b7a", "#8a6d1f", "#3f8f3f"];
const STATUS_LABELS = { planned: "规划 planned", active: "在用 active", suspended: "停用 suspended", replaced: "更换 replaced", retired: "报废 retired" };
const SHARE_LABELS = { unconditional: "无条件 unconditional", conditional: "有条件 conditional", not_shareable: "不予共享 not shareable" };
const OUTCOME_LABELS = { granted: "已授权 granted", refused: "已拒绝 refused", pending: "待审批 pending" };

const beijingMonth = () => new Date(Date.now() + 8 * 3600_000).toISOString().slice(0, 7);

function monthsBefore(month, n) {
  const [y, m] = month.split("-").map(Number);
  return Array.from({ length: n }, (_, i) => {
    const d = new Date(Date.UTC(y, m - 1 - (n - 1 - i), 1));
    return d.toISOString().slice(0, 7);
  });
}

export function render(view, { query, navigate }) {
  let alive = true;
  const charts = [];
  const month = /^\d{4}-\d{2}$/.test(query.get("month") || "") ? query.get("month") : beijingMonth();
  const district = /^\d{6}$/.test(query.get("district") || "") ? query.get("district") : "";
  const filters = { month, district: district || undefined };
  const picker = h("input", { name: "month", type: "month", value: month, max: beijingMonth(), required: true });
  const districts = select("district", district ? [[district, district]] : [], { any: "全市 whole city", value: district });
  const refilter = () => picker.value && navigate("stats", [], { month: picker.value, district: districts.value });
  picker.addEventListener("change", refilter);
  districts.addEventListener("change", refilter);
  loadReferences()
    .then((refs) => {
      if (!alive) return;
      replace(districts, h("option", { value: "" }, "全市 whole city"), refs.districts.map((d) => h("option", { value: d.code }, `${d.name} ${d.code}`)));
      districts.value = district;
    })
    .catch(() => {}); // the select keeps "whole city"; the stats below show any API error
  const downloads = h("div", { id: "stats-downloads" });
  const csv = h("button", { type: "button", class: "secondary" }, "Download CSV");
  const html = h("button", { type: "button", class: "secondary" }, "Download HTML report");
  const save = async (button, path, name) => {
    button.disabled = true;
    try {
      const saved = await download(path, filters, name);
      if (alive) replace(downloads, h("span", { class: "muted" }, `saved ${saved}`));
    } catch (exc) {
      if (alive) replace(downloads, errorBox(exc));
    } finally {
      button.disabled = false;
    }
  };
  csv.addEventListener("click", () => save(csv, "/v1/stats/report.csv", `assessment-${month}.csv`));
  html.addEventListener("click", () => save(html, "/v1/stats/report.html", `assessment-${month}.html`));
  const body = h("div", { id: "stats-body" }, h("p", { class: "muted" }, "Counting…"));
  replace(
    view,
    h("h1", {}, "考核 Assessment"),
    h("div", { class: "card row" }, field("Month", picker), labelled("District", districts), h("div", { class: "grow" }), csv, html),
    downloads,
    body,
  );

  (async () => {
    let stats;
    try {
      stats = await get("/v1/stats", filters);
    } catch (exc) {
      if (alive) replace(body, errorBox(exc));
      return;
    }
    if (!alive) return;
    replace(body, summary(stats), chartGrid(stats), orgTable(stats));
    if (typeof Chart === "undefined") {
      body.prepend(errorBox({ code: "CHART_MISSING", message: "Chart.js did not load (static/vendor): the figures are in the tables" }));
      return;
    }
    Chart.defaults.font.family = getComputedStyle(document.documentElement).fontFamily; // CJK labels too
    draw(charts, stats);
    // registrations month by month: one answer per month before this one (a month before the chain counts 0)
    const months = monthsBefore(month, TREND_MONTHS);
    const trend = await Promise.all(
      months.map((m) => (m === month ? Promise.resolve(stats) : get("/v1/stats", { ...filters, month: m }).catch(() => null))),
    );
    if (!alive) return;
    charts.push(
      barChart("chart-monthly", months, [
        { label: "新登记 registered", data: trend.map((s) => (s ? s.totals.devices.registered : null)), backgroundColor: PALETTE[0] },
      ]),
    );
  })();

  return () => {
    alive = false;
    for (const chart of charts.splice(0)) chart.destroy();
  };
}

function summary(s) {
  const t = s.totals;
  const median = t.sharing.median_approval_seconds;
  const figure = (id, label, value) => h("div", { class: "figure", id }, h("div", { class: "value", dataset: { value } }, Number(value).toLocaleString()), h("div", { class: "muted" }, label));
  return h(
    "section",
    { class: "card", "aria-label": "totals", id: "stats-totals" },
    h("div", { class: "figures" }, [
      figure("total-devices", "上链设备 devices on the ledger", t.devices.total),
      figure("total-registered", "本月新登记 registered this month", t.devices.registered),
      figure("total-overdue", "逾期未巡检 overdue inspections", t.devices.inspections_overdue),
      figure("total-catalog", "目录条目 catalog entries", t.catalog.total),
      figure("total-requested", "共享申请 requests this month", t.sharing.requested),
      figure("total-granted", "已授权 granted", t.sharing.granted),
      figure("total-refused", "已拒绝 refused", t.sharing.refused),
      figure("total-pending", "待审批 pending", t.sharing.pending),
    ]),
    kv([
      ["Period", `${s.period.from} – ${s.period.to} (${s.period.timezone})${s.period.complete ? "" : ", in progress"}`],
      ["As of", s.period.as_of],
      ["Devices of", s.district ? `${s.by_district.find((d) => d.district === s.district)?.name || ""} ${s.district}` : "全市 the whole city"],
      ["Overdue after", `${s.overdue_days} days without inspection`],
      ["Median request → grant", median === null ? "—" : `${median.toLocaleString()} s`],
      ["Ledger block", s.ledger_block === null ? "—" : String(s.ledger_block)],
    ]),
  );
}

const CHARTS = [
  ["chart-district", "上链设备（按区·类型）Devices on the ledger by district and type"],
  ["chart-org", "上链设备（按部门·状态）Devices by department and status"],
  ["chart-monthly", "每月新登记 Registrations per month"],
  ["chart-overdue", "逾期未巡检（按区）Overdue inspections by district"],
  ["chart-share", "数据目录（按共享条件）Catalog by share condition"],
  ["chart-sharing", "共享申请（按提供单位）Sharing requests by owner"],
];

function chartGrid() {
  return h(
    "div",
    { class: "grid2 stats-charts" },
    CHARTS.map(([id, title]) =>
      h("section", { class: "card", "aria-label": title }, h("h2", {}, title), h("div", { class: "chart" }, h("canvas", { id, role: "img", "aria-label": title }))),
    ),
  );
}

function orgTable(s) {
  return h(
    "section",
    { class: "card", "aria-label": "by department" },
    h("h2", {}, "各单位指标 By department"),
    table(
      [
        { title: "Org", value: (o) => `${o.org} ${o.name || ""}` },
        { title: "Devices", value: (o) => o.devices.total },
        { title: "Registered", value: (o) => o.devices.registered },
        { title: "Overdue", value: (o) => o.devices.inspections_overdue },
        { title: "Catalog", value: (o) => o.catalog.total },
        { title: "Requested", value: (o) => o.sharing.requested },
        { title: "Granted", value: (o) => o.sharing.granted },
        { title: "Refused", value: (o) => o.sharing.refused },
        { title: "Pending", value: (o) => o.sharing.pending },
      ],
      s.by_org,
      { empty: "No organisation owns devices or entries yet." },
    ),
  );
}

function barChart(id, labels, datasets, { stacked = false, horizontal = false } = {}) {
  const axis = { stacked, ticks: { precision: 0 }, beginAtZero: true };
  return new Chart(document.getElementById(id), {
    type: "bar",
    data: { labels, datasets },
    options: {
      animation: false,
      maintainAspectRatio: false,
      indexAxis: horizontal ? "y" : "x",
      scales: { x: { ...axis }, y: { ...axis } },
      plugins: { legend: { display: datasets.length > 1, position: "bottom" } },
    },
  });
}

function draw(charts, s) {
  const districts = s.by_district.map((d) => d.name || String(d.district));
  const types = [...new Set(s.by_district.flatMap((d) => Object.keys(d.devices.by_type)))].sort();
  charts.push(
    barChart(
      "chart-district",
      districts,
      types.map((type, i) => ({
        label: type,
        data: s.by_district.map((d) => Object.values(d.devices.by_type[type] || {}).reduce((a, b) => a + b, 0)),
        backgroundColor: PALETTE[i % PALETTE.length],
      })),
      { stacked: true },
    ),
    barChart(
      "chart-org",
      s.by_org.map((o) => o.org),
      DEVICE_STATUSES.map((status) => ({ label: STATUS_LABELS[status], data: s.by_org.map((o) => o.devices.by_status[status] || 0), backgroundColor: COLOURS[status] })),
      { stacked: true, horizontal: true },
    ),
    barChart("chart-overdue", districts, [{ label: "逾期 overdue", data: s.by_district.map((d) => d.devices.inspections_overdue), backgroundColor: COLOURS.suspended }]),
    new Chart(document.getElementById("chart-share"), {
      type: "doughnut",
      data: {
        labels: SHARE.map((k) => SHARE_LABELS[k]),
        datasets: [{ data: SHARE.map((k) => s.totals.catalog.by_share_condition[k] || 0), backgroundColor: SHARE.map((k) => COLOURS[k]) }],
      },
      options: { animation: false, maintainAspectRatio: false, plugins: { legend: { position: "bottom" } } },
    }),
    barChart(
      "chart-sharing",
      s.by_org.map((o) => o.org),
      OUTCOMES.map((k) => ({ label: OUTCOME_LABELS[k], data: s.by_org.map((o) => o.sharing[k]), backgroundColor: COLOURS[k] })),
      { stacked: true },
    ),
  );
}
