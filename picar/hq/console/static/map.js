// PiCAR HQ console: the fleet map, drawn here in SVG with no library and no internet. The basemap is the
// Natural Earth GeoJSON that ships with HQ; an operator's tile server (data-tiles, a {z}/{x}/{y} template) is
// drawn under it when configured. Web Mercator; drag to pan, wheel or buttons to zoom. Cars come from the
// fleet table's rows (data-car, data-lat, data-lon, data-online): the table and the map show one truth.
// Other pages mark their points the same way (data-point = the label, data-lat, data-lon; a search's reads),
// and a page with a search area (data-area-form = the form's id, with inputs south, west, north, east) can
// draw it: the draw button turns the next drag into a box whose corners fill the inputs.
"use strict";

(() => {
  const box = document.getElementById("map");
  if (!box) return;
  const NS = "http://www.w3.org/2000/svg";
  const TILE = 256, MIN_Z = 2, MAX_Z = 18;
  const el = (name, attrs = {}) => {
    const e = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    return e;
  };

  // World pixels at zoom 0 (a 256-pixel world).
  const project = (lon, lat) => {
    const s = Math.sin(Math.max(-85.05, Math.min(85.05, lat)) * Math.PI / 180);
    return [(lon + 180) / 360 * TILE, (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * TILE];
  };

  const [lat0, lon0] = box.dataset.center.split(",").map(Number);
  const view = {z: Number(box.dataset.zoom), c: project(lon0, lat0)};  // centre in zoom-0 pixels
  const svg = el("svg", {class: "map-svg", width: "100%", height: "100%"});
  const tiles = el("g", {class: "tiles"}), land = el("g", {class: "land"}), places = el("g", {class: "places"});
  const cars = el("g", {class: "cars"}), area = el("g", {class: "area"});
  svg.append(tiles, land, places, area, cars);
  const POINTS = "tr[data-car][data-lat], [data-point][data-lat]";
  box.prepend(svg);
  let capitals = [];

  const size = () => [box.clientWidth || 800, box.clientHeight || 500];
  const scale = () => 2 ** view.z;
  const toScreen = ([x, y]) => {
    const [w, h] = size(), k = scale();
    return [(x - view.c[0]) * k + w / 2, (y - view.c[1]) * k + h / 2];
  };

  function ring(coords) {
    let d = "";
    coords.forEach(([lon, lat], i) => {
      const [x, y] = project(lon, lat);
      d += (i ? "L" : "M") + x.toFixed(3) + " " + y.toFixed(3);
    });
    return d + "Z";
  }

  function drawLand(geojson) {
    for (const f of geojson.features) {
      const g = f.geometry;
      if (!g) continue;
      const polys = g.type === "Polygon" ? [g.coordinates] : g.type === "MultiPolygon" ? g.coordinates : [];
      const d = polys.map((p) => p.map(ring).join("")).join("");
      const path = el("path", {d, class: "country"});
      const name = f.properties && (f.properties.label || f.properties.name);
      if (name) { const t = el("title"); t.textContent = name; path.append(t); }
      land.append(path);
    }
    box.dataset.basemap_loaded = "1";
  }

  function drawTiles() {
    tiles.replaceChildren();
    const template = box.dataset.tiles;
    if (!template) return;
    const z = Math.round(view.z), n = 2 ** z, k = 2 ** (view.z - z), [w, h] = size();
    const cx = view.c[0] * n / TILE * TILE, cy = view.c[1] * n / TILE * TILE;  // centre in zoom-z pixels
    const x0 = Math.floor((cx - w / 2 / k) / TILE), x1 = Math.floor((cx + w / 2 / k) / TILE);
    const y0 = Math.max(0, Math.floor((cy - h / 2 / k) / TILE)), y1 = Math.min(n - 1, Math.floor((cy + h / 2 / k) / TILE));
    for (let x = x0; x <= x1; x++) {
      for (let y = y0; y <= y1; y++) {
        const href = template.replace("{z}", z).replace("{x}", ((x % n) + n) % n).replace("{y}", y);
        tiles.append(el("image", {href, width: TILE * k, height: TILE * k,
          x: (x * TILE - cx) * k + w / 2, y: (y * TILE - cy) * k + h / 2}));
      }
    }
  }

  function drawPlaces() {
    places.replaceChildren();
    if (view.z < 4) return;
    for (const [name, p] of capitals) {
      const [x, y] = toScreen(p);
      const g = el("g", {transform: `translate(${x.toFixed(1)},${y.toFixed(1)})`});
      const t = el("text", {x: 5, y: 4, class: "place-name"});
      t.textContent = name;
      g.append(el("circle", {r: 2.5, class: "place"}), t);
      places.append(g);
    }
  }

  function drawCars() {
    cars.replaceChildren();
    for (const row of document.querySelectorAll(POINTS)) {
      const p = project(Number(row.dataset.lon), Number(row.dataset.lat));
      const [x, y] = toScreen(p);
      const car = row.dataset.car !== undefined, online = row.dataset.online === "1";
      const g = el("g", {transform: `translate(${x.toFixed(1)},${y.toFixed(1)})`,
        class: car ? "car-marker " + (online ? "online" : "offline") : "point-marker"});
      if (car) {
        g.setAttribute("data-car", row.dataset.car);
        const label = el("text", {x: 9, y: 4, class: "car-name"});
        label.textContent = row.dataset.car;
        g.append(el("circle", {r: 6}), label);
      } else {  // many points may share a place: their label is a tooltip, the row has the rest
        const title = el("title");
        title.textContent = row.dataset.point + (row.dataset.title ? " · " + row.dataset.title : "");
        g.append(el("circle", {r: 5}), title);
      }
      g.addEventListener("click", () => row.scrollIntoView({block: "center"}));
      cars.append(g);
    }
    box.dataset.cars = String(cars.childElementCount);
  }

  function draw() {
    const [w, h] = size(), k = scale();
    land.setAttribute("transform",
      `translate(${(w / 2 - view.c[0] * k).toFixed(2)},${(h / 2 - view.c[1] * k).toFixed(2)}) scale(${k})`);
    drawTiles();
    drawPlaces();
    drawArea();
    drawCars();
  }

  function zoomAt(dz, sx, sy) {
    const z = Math.max(MIN_Z, Math.min(MAX_Z, view.z + dz));
    const [w, h] = size(), k0 = scale(), k1 = 2 ** z;
    // Keep the world point under (sx, sy) where it is.
    const wx = view.c[0] + (sx - w / 2) / k0, wy = view.c[1] + (sy - h / 2) / k0;
    view.c = [wx - (sx - w / 2) / k1, wy - (sy - h / 2) / k1];
    view.z = z;
    draw();
  }

  function fit() {
    const pts = [...document.querySelectorAll(POINTS)]
      .map((r) => project(Number(r.dataset.lon), Number(r.dataset.lat)));
    if (!pts.length) return;
    const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]), [w, h] = size();
    const span = Math.max(Math.max(...xs) - Math.min(...xs), (Math.max(...ys) - Math.min(...ys)) * w / h, 1e-4);
    view.c = [(Math.max(...xs) + Math.min(...xs)) / 2, (Math.max(...ys) + Math.min(...ys)) / 2];
    view.z = Math.max(MIN_Z, Math.min(14, Math.floor(Math.log2(w * 0.7 / span))));
    draw();
  }

  // the search area: a box drawn from the form's inputs, or by dragging once the draw button is pressed
  const areaForm = box.dataset.areaForm ? document.getElementById(box.dataset.areaForm) : null;
  const input = (name) => areaForm && areaForm.elements.namedItem(name);
  const unproject = ([x, y]) => {
    const n = Math.PI - 2 * Math.PI * y / TILE;
    return [x / TILE * 360 - 180, 180 / Math.PI * Math.atan(Math.sinh(n))];
  };
  const fromScreen = (sx, sy) => {
    const [w, h] = size(), k = scale();
    return unproject([(sx - w / 2) / k + view.c[0], (sy - h / 2) / k + view.c[1]]);
  };
  function drawArea() {
    area.replaceChildren();
    if (!areaForm) return;
    const v = ["south", "west", "north", "east"].map((n) => input(n).value.trim());
    if (v.some((x) => x === "" || !Number.isFinite(Number(x)))) return;
    const [s, w, n, e] = v.map(Number);
    const [x0, y0] = toScreen(project(w, n)), [x1, y1] = toScreen(project(e, s));
    area.append(el("rect", {x: Math.min(x0, x1), y: Math.min(y0, y1), width: Math.abs(x1 - x0),
      height: Math.abs(y1 - y0), class: "area-box"}));
  }
  const drawButton = box.querySelector("button[data-draw]");
  let drawing = false, corner = null;
  drawButton?.addEventListener("click", () => {
    drawing = !drawing;
    drawButton.setAttribute("aria-pressed", String(drawing));
  });
  for (const n of ["south", "west", "north", "east"]) input(n)?.addEventListener("input", drawArea);
  const setArea = (a, b) => {
    const fixed = (x) => x.toFixed(5);
    input("south").value = fixed(Math.min(a[1], b[1]));
    input("north").value = fixed(Math.max(a[1], b[1]));
    input("west").value = fixed(Math.min(a[0], b[0]));
    input("east").value = fixed(Math.max(a[0], b[0]));
    drawArea();
  };

  // pan and zoom (or, in draw mode, the area's box)
  let drag = null;
  svg.addEventListener("pointerdown", (e) => {
    svg.setPointerCapture(e.pointerId);
    const r = svg.getBoundingClientRect();
    if (drawing) corner = fromScreen(e.clientX - r.left, e.clientY - r.top);
    else drag = [e.clientX, e.clientY];
  });
  svg.addEventListener("pointermove", (e) => {
    if (corner) {
      const r = svg.getBoundingClientRect();
      setArea(corner, fromScreen(e.clientX - r.left, e.clientY - r.top));
      return;
    }
    if (!drag) return;
    const k = scale();
    view.c = [view.c[0] - (e.clientX - drag[0]) / k, view.c[1] - (e.clientY - drag[1]) / k];
    drag = [e.clientX, e.clientY];
    draw();
  });
  svg.addEventListener("pointerup", (e) => {
    if (corner) {
      const r = svg.getBoundingClientRect();
      setArea(corner, fromScreen(e.clientX - r.left, e.clientY - r.top));
      corner = null;
      drawing = false;
      drawButton?.setAttribute("aria-pressed", "false");
    }
    drag = null;
  });
  svg.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = svg.getBoundingClientRect();
    zoomAt(e.deltaY < 0 ? 1 : -1, e.clientX - r.left, e.clientY - r.top);
  }, {passive: false});
  for (const b of box.querySelectorAll("button[data-zoom]")) {
    b.addEventListener("click", () => { const [w, h] = size(); zoomAt(Number(b.dataset.zoom), w / 2, h / 2); });
  }
  box.querySelector("button[data-fit]")?.addEventListener("click", fit);
  window.addEventListener("resize", draw);
  document.addEventListener("picar:cars", drawCars);
  document.addEventListener("picar:refreshed", drawCars);

  const getJSON = (url) => fetch(url, {credentials: "same-origin"}).then((r) => r.ok ? r.json() : null);
  getJSON(box.dataset.basemap).then((g) => { if (g) { drawLand(g); draw(); } });
  getJSON(box.dataset.capitals).then((g) => {
    if (!g) return;
    capitals = g.features.filter((f) => f.geometry && f.geometry.type === "Point").map((f) => [
      (f.properties && (f.properties.label || f.properties.name)) || "",
      project(f.geometry.coordinates[0], f.geometry.coordinates[1])]);
    drawPlaces();
  });
  draw();
  if (document.querySelector(POINTS)) fit();
})();
