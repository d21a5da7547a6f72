// The console's shell: hash routes (#/page/arg?query) to page modules, the nav, and the logged-in org.
// A page module exports `render(view, ctx)`; it may return a function the router calls when leaving the page.
import { session } from "./api.js";
import { h, replace, errorBox } from "./ui.js";

export const PAGES = [
  { path: "map", title: "地图 Map", module: "./pages/map.js" },
  { path: "ledger", title: "台账 Ledger", module: "./pages/ledger.js" },
  { path: "register", title: "登记 Register", module: "./pages/register.js" },
  { path: "catalog", title: "目录 Catalog", module: "./pages/catalog.js" },
  { path: "inbox", title: "审批 Approvals", module: "./pages/inbox.js" },
  { path: "resolver", title: "判定 Resolver", module: "./pages/resolver.js" },
  { path: "audit", title: "审计 Audit", module: "./pages/audit.js" },
  { path: "stats", title: "考核 Assessment", module: "./pages/stats.js" },
];
const HIDDEN = [
  { path: "device", module: "./pages/device.js" }, // #/device/<code>
  { path: "login", module: "./pages/login.js", open: true },
];
const DEFAULT_PAGE = "map";

let leave = null;

export function parseHash(hash = window.location.hash) {
  const [pathPart, queryPart = ""] = hash.replace(/^#\/?/, "").split("?");
  const [page = "", ...args] = pathPart.split("/").map(decodeURIComponent);
  return { page: page || DEFAULT_PAGE, args, query: new URLSearchParams(queryPart) };
}

export function navigate(page, args = [], query = {}) {
  const q = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined && v !== null && v !== ""));
  const path = [page, ...args.map(encodeURIComponent)].join("/");
  window.location.hash = `#/${path}${q.toString() ? `?${q}` : ""}`;
}

function renderNav(current) {
  replace(
    document.getElementById("nav"),
    session.token()
      ? PAGES.map((p) => h("a", { href: `#/${p.path}`, class: p.path === current ? "active" : null }, p.title))
      : [],
  );
  const me = session.me();
  replace(
    document.getElementById("who"),
    me
      ? [
          h("span", { title: me.account }, `${me.org_name || me.org_code} · ${me.org_code}`),
          h("button", { class: "secondary", id: "logout", onclick: logout }, "Log out"),
        ]
      : [],
  );
}

function logout() {
  session.clear();
  navigate("login");
}

async function route() {
  const { page, args, query } = parseHash();
  const spec = [...PAGES, ...HIDDEN].find((p) => p.path === page);
  if (leave) {
    try {
      leave();
    } catch (exc) {
      console.error(exc);
    }
    leave = null;
  }
  if (!session.token() && !spec?.open) {
    navigate("login", [], { next: window.location.hash.slice(1) || `/${DEFAULT_PAGE}` });
    return;
  }
  renderNav(page);
  const view = document.getElementById("view");
  if (!spec) {
    replace(view, errorBox({ code: "PAGE_NOT_FOUND", message: `no page ${page}` }));
    return;
  }
  replace(view);
  document.title = `${spec.title || page} · 目录链`;
  try {
    const module = await import(spec.module);
    leave = (await module.render(view, { args, query, me: session.me(), navigate })) || null;
  } catch (exc) {
    console.error(exc);
    replace(view, errorBox(exc));
  }
}

window.addEventListener("hashchange", route);
window.addEventListener("dirchain:logout", () => navigate("login"));
route();
