// The map (地图): Beijing's 16 district outlines as the base (no tiles: the console works offline), the devices
// as clusters counted by the API (GET /v1/map/clusters, grid cells of ~64 px) and, zoomed in, one by one with a
// popup linking to the device page. Filters by type, district and status; "Find device" flies to a code.
// The view (centre, zoom, filters) is kept in the hash query (#/map?lat=..&lon=..&z=..&type=..) for sharing.
import { DEVICE_STATUSES, get, loadReferences, session } from "../api.js";
import { h, replace, errorBox, badge, labelled, select } from "../ui.js";

const OUTLINES = new URL("../../data/beijing-districts.geojson", import.meta.url);
const FILTERS = ["type", "district", "status"];
const RELOAD_MS = 250; // debounce of moveend / zoomend
const FOUND_ZOOM = 17;
const PALETTE = ["#1f5fbf", "#d9480f", "#2b8a3e", "#862e9c", "#c2255c", "#0b7285", "#e67700", "#5c940d", "#364fc7", "#a61e4d"];

// A stable colour per type name.
function colour(type) {
  let n = 0;
  for (const ch of String(type || "")) n = (n * 31 + ch.codePointAt(0)) >>> 0;
  return PALETTE[n % PALETTE.length];
}

function popup(device) {
  return h(
    "div",
    { class: "device-popup" },
    h("a", { href: `#/device/${encodeURIComponent(device.code)}` }, device.code),
    h("div", {}, device.type || "—"),
    h("div", {}, badge(device.status)),
  );
}

function clusterIcon(cluster) {
  const size = Math.round(26 + 9 * Math.log10(cluster.count));
  const label = h("span", {}, cluster.count.toLocaleString());
  return L.divIcon({ className: "cluster-icon", html: label, iconSize: [size, size] });
}

function legend(answer) {
  const byType = new Map();
  for (const c of answer.clusters) for (const [t, n] of Object.entries(c.by_type)) byType.set(t, (byType.get(t) || 0) + n);
  for (const p of answer.points) byType.set(p.type, (byType.get(p.type) || 0) + 1);
  const rows = [...byType.entries()].sort((a, b) => b[1] - a[1]);
  const what = answer.mode === "points" ? "devices" : "devices in clusters";
  return [
    h("div", { id: "map-total" }, h("strong", {}, answer.total.toLocaleString()), ` ${what} in view`),
    h(
      "ul",
      { class: "map-legend-types" },
      rows.map(([type, n]) =>
        h("li", {}, h("span", { class: "swatch", style: `background:${colour(type)}` }), `${type || "—"} `, h("span", { class: "muted" }, n.toLocaleString())),
      ),
    ),
    answer.truncated ? h("div", { class: "muted" }, "Only the largest cells are shown: zoom in for the rest.") : null,
    answer.stale ? h("div", { class: "muted" }, "Counts are being refreshed.") : null,
  ];
}

export async function render(view, { query }) {
  const state = Object.fromEntries(FILTERS.map((k) => [k, query.get(k) || ""]));
  const status = h("div", { id: "map-status" });
  const legendBox = h("div", { class: "card map-legend", id: "map-legend", "aria-label": "Legend" }, h("p", { class: "muted" }, "Loading…"));
  const typeSelect = select("type", [], { any: "any type 任意类型", value: state.type });
  const districtSelect = select("district", [], { any: "any district 任意区", value: state.district });
  const statusSelect = select("status", DEVICE_STATUSES, { any: "any status 任意状态", value: state.status });
  const findInput = h("input", { name: "code", id: "map-find", placeholder: "BJ-CAMR-110105000001", autocomplete: "off" });
  const findButton = h("button", { type: "submit" }, "Find");
  const findForm = h("form", { class: "row", id: "map-find-form" }, labelled("Find device", findInput), findButton);
  const mapEl = h("div", { class: "map", id: "map" });
  replace(
    view,
    h("div", { class: "card row", id: "map-filters" }, labelled("Type 类型", typeSelect), labelled("District 区", districtSelect), labelled("Status 状态", statusSelect), h("div", { class: "grow" }), findForm),
    status,
    h("div", { class: "map-layout" }, mapEl, legendBox),
  );

  const map = L.map(mapEl, { attributionControl: false, minZoom: 7, maxZoom: 19, zoomSnap: 1 });
  const clusterLayer = L.layerGroup().addTo(map);
  const pointLayer = L.layerGroup().addTo(map);
  const foundLayer = L.layerGroup().addTo(map);
  let closed = false;
  let timer = null;
  let sequence = 0; // answers of a request overtaken by a newer one are dropped

  const lat = parseFloat(query.get("lat"));
  const lon = parseFloat(query.get("lon"));
  const z = parseInt(query.get("z"), 10);
  const fromHash = Number.isFinite(lat) && Number.isFinite(lon) && Number.isFinite(z);
  map.setView(fromHash ? [lat, lon] : [40.2, 116.4], fromHash ? z : 8);

  function keepHash() {
    const c = map.getCenter();
    const q = new URLSearchParams({ lat: c.lat.toFixed(5), lon: c.lng.toFixed(5), z: String(map.getZoom()) });
    for (const k of FILTERS) if (state[k]) q.set(k, state[k]);
    history.replaceState(null, "", `#/map?${q}`); // no hashchange: the page stays, only the address follows
  }

  function draw(answer) {
    clusterLayer.clearLayers();
    pointLayer.clearLayers();
    for (const cluster of answer.clusters) {
      const types = Object.entries(cluster.by_type).map(([t, n]) => `${t}: ${n}`).join(", ");
      const marker = L.marker([cluster.lat, cluster.lon], { icon: clusterIcon(cluster), title: `${cluster.count} devices — ${types}`, keyboard: true });
      marker.on("click", () => map.setView([cluster.lat, cluster.lon], Math.min(map.getZoom() + 2, map.getMaxZoom())));
      clusterLayer.addLayer(marker);
    }
    for (const point of answer.points) {
      const marker = L.circleMarker([point.lat, point.lon], { radius: 7, color: "#fff", weight: 1.5, fillColor: colour(point.type), fillOpacity: 0.95 });
      marker.bindPopup(() => popup(point));
      marker.options.code = point.code;
      pointLayer.addLayer(marker);
    }
    replace(legendBox, legend(answer));
    mapEl.dataset.mode = answer.mode;
    mapEl.dataset.total = String(answer.total);
  }

  async function load() {
    const mine = ++sequence;
    const b = map.getBounds();
    const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
    const bbox = [clamp(b.getWest(), -180, 180), clamp(b.getSouth(), -90, 90), clamp(b.getEast(), -180, 180), clamp(b.getNorth(), -90, 90)];
    mapEl.setAttribute("aria-busy", "true");
    try {
      const answer = await get("/v1/map/clusters", { bbox: bbox.map((v) => v.toFixed(6)).join(","), zoom: map.getZoom(), ...state });
      if (closed || mine !== sequence) return;
      replace(status);
      draw(answer);
    } catch (err) {
      if (closed || mine !== sequence) return;
      replace(status, errorBox(err));
    } finally {
      if (mine === sequence) mapEl.removeAttribute("aria-busy");
    }
  }

  function reload() {
    clearTimeout(timer);
    timer = setTimeout(() => {
      keepHash();
      load();
    }, RELOAD_MS);
  }

  for (const [name, el] of [["type", typeSelect], ["district", districtSelect], ["status", statusSelect]]) {
    el.addEventListener("change", () => {
      state[name] = el.value;
      reload();
    });
  }

  findForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const code = findInput.value.trim();
    if (!code) {
      replace(status, errorBox({ code: "VALIDATION_ERROR", message: "type a device code", field: "code" }));
      return;
    }
    findButton.disabled = true;
    try {
      const device = await get(`/v1/devices/${encodeURIComponent(code)}`);
      if (closed) return;
      replace(status);
      foundLayer.clearLayers();
      const at = [device.location.lat, device.location.lon];
      const found = L.circleMarker(at, { radius: 11, color: "#111", weight: 3, fillColor: colour(device.type), fillOpacity: 1 });
      found.bindPopup(() => popup(device), { autoPan: false });
      foundLayer.addLayer(found);
      map.once("moveend", () => found.openPopup());
      map.flyTo(at, Math.max(map.getZoom(), FOUND_ZOOM), { duration: 0.6 });
    } catch (err) {
      if (!closed) replace(status, errorBox(err));
    } finally {
      findButton.disabled = false;
    }
  });

  // The outlines and the filters' options load while the router already holds the cleanup (a quick leave works).
  async function setup() {
    try {
      const [outlines, refs] = await Promise.all([
        fetch(OUTLINES).then((r) => {
          if (!r.ok) throw new Error(`district outlines: HTTP ${r.status}`);
          return r.json();
        }),
        loadReferences(),
      ]);
      if (closed) return;
      for (const rule of refs.rules) typeSelect.append(h("option", { value: rule.type }, rule.type));
      for (const d of refs.districts) districtSelect.append(h("option", { value: String(d.code) }, `${d.name} ${d.code}`));
      typeSelect.value = state.type;
      districtSelect.value = state.district;
      const base = L.geoJSON(outlines, {
        style: () => ({ color: "#5b6b82", weight: 1.2, fillColor: "#ffffff", fillOpacity: 0.7 }),
        interactive: false,
        className: "district-outline",
      }).addTo(map);
      base.eachLayer((layer) => layer.getElement()?.setAttribute("data-district", layer.feature.properties.district));
      for (const f of outlines.features) {
        const [lon0, lat0] = f.properties.label || [];
        if (lat0 === undefined) continue;
        L.marker([lat0, lon0], {
          icon: L.divIcon({ className: "district-label", html: h("span", {}, f.properties.name), iconSize: null }),
          interactive: false,
          keyboard: false,
        }).addTo(map);
      }
      if (!fromHash) map.fitBounds(base.getBounds(), { animate: false });
      base.bringToBack();
    } catch (err) {
      if (!closed) replace(status, errorBox(err));
    }
    if (closed) return;
    map.on("moveend", reload); // zoomend is followed by moveend: one reload for both
    if (session.token()) load();
  }
  setup();

  return () => {
    closed = true;
    clearTimeout(timer);
    map.remove();
  };
}
