// SkyView front end: Aladin Lite (bundled, handed over by the kernel as bytes, never
// fetched from a CDN) with the footprints, pointings and target; plus a tangent-plane
// plot of the same footprints that works without WebGL or HiPS tiles (offline).
// Clicking a footprint (in either view) toggles its row; the kernel owns the selection.
const D2R = Math.PI / 180;
const SVGNS = "http://www.w3.org/2000/svg";

function loadAladin(model) {
  // One copy per page: the module is 2.4 MB; every SkyView shares it.
  if (window.__ctanbAladin) return window.__ctanbAladin;
  window.__ctanbAladin = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the kernel did not send Aladin Lite")), 30000);
    const onMsg = (msg, buffers) => {
      if (!msg || msg.kind !== "aladin_source") return;
      model.off("msg:custom", onMsg);
      clearTimeout(timer);
      if (!buffers || !buffers.length) { reject(new Error(msg.error || "no Aladin Lite in ctanb/static")); return; }
      const buf = buffers[0];
      const bytes = buf instanceof ArrayBuffer ? buf : buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
      const url = URL.createObjectURL(new Blob([bytes], { type: "text/javascript" }));
      import(url).then((m) => resolve(m.default || m.A || m), reject);
    };
    model.on("msg:custom", onMsg);
    model.send({ command: "aladin_source" });
  });
  window.__ctanbAladin.catch(() => { window.__ctanbAladin = null; });
  return window.__ctanbAladin;
}

function project(ra, dec, ra0, dec0) {
  const d = dec * D2R, d0 = dec0 * D2R, da = (ra - ra0) * D2R;
  const cosc = Math.sin(d0) * Math.sin(d) + Math.cos(d0) * Math.cos(d) * Math.cos(da);
  const x = (Math.cos(d) * Math.sin(da)) / cosc;
  const y = (Math.cos(d0) * Math.sin(d) - Math.sin(d0) * Math.cos(d) * Math.cos(da)) / cosc;
  return [x / D2R, y / D2R];
}

function centre(model) {
  const target = model.get("target");
  if (target && target.ra !== undefined) return [target.ra, target.dec];
  const fps = model.get("footprints");
  if (!fps.length) return [83.633, 22.0145];
  // Mean of unit vectors, so that RA 359/1 averages to 0.
  let x = 0, y = 0, z = 0;
  for (const f of fps) {
    x += Math.cos(f.dec * D2R) * Math.cos(f.ra * D2R);
    y += Math.cos(f.dec * D2R) * Math.sin(f.ra * D2R);
    z += Math.sin(f.dec * D2R);
  }
  return [(Math.atan2(y, x) / D2R + 360) % 360, Math.atan2(z, Math.hypot(x, y)) / D2R];
}

const wrap180 = (a) => ((((a + 180) % 360) + 360) % 360) - 180;

// The tangent plane only works near its centre (it sends a point 90 deg away to
// infinity); results spread over the sky (an all-sky query) get a plate carree
// centred on ra0, each footprint kept next to its own pointing across RA 180.
function projector(fps, ra0, dec0) {
  let far = 0;
  for (const f of fps) {
    const cosc = Math.sin(dec0 * D2R) * Math.sin(f.dec * D2R) +
      Math.cos(dec0 * D2R) * Math.cos(f.dec * D2R) * Math.cos((f.ra - ra0) * D2R);
    far = Math.max(far, Math.acos(Math.max(-1, Math.min(1, cosc))) / D2R);
  }
  if (far < 30) return { name: "tangent plane", point: (ra, dec) => project(ra, dec, ra0, dec0), shape: (f) => (f.polygon.length ? f.polygon : [[f.ra, f.dec]]).map(([a, b]) => project(a, b, ra0, dec0)) };
  const point = (ra, dec) => [wrap180(ra - ra0), dec];
  return {
    name: "RA/Dec plate carree", point,
    shape: (f) => {
      const [px] = point(f.ra, f.dec);
      return (f.polygon.length ? f.polygon : [[f.ra, f.dec]]).map(([a, b]) => [px + wrap180(a - f.ra), b]);
    },
  };
}

const escText = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

// The whole plot is one SVG string and one innerHTML: 1000 footprints are ~2000 nodes,
// which createElementNS one by one makes several times slower.
function drawPlot(model, svg, note) {
  const W = 420, H = 360, pad = 30;
  const [ra0, dec0] = centre(model);
  const fps = model.get("footprints"), target = model.get("target");
  const selected = new Set(model.get("selected_rows"));
  const proj = projector(fps, ra0, dec0);
  const plate = proj.name !== "tangent plane";
  const shapes = fps.map((f) => ({ f, xy: proj.shape(f) }));
  let ext = 0.5;
  for (const s of shapes) for (const [x, y] of s.xy) ext = Math.max(ext, Math.abs(x), Math.abs(plate ? y - dec0 : y));
  ext = Math.min(ext, 200);
  const scale = (Math.min(W, H) / 2 - pad) / (ext * 1.05);
  const yc = plate ? dec0 : 0;
  const sx = (x) => W / 2 - x * scale, sy = (y) => H / 2 - (y - yc) * scale;  // east to the left
  const out = [`<rect x="0" y="0" width="${W}" height="${H}" fill="#0b1020"/>`];
  // Offset grid in degrees, at most ~10 lines each way whatever the extent.
  const step = [0.5, 1, 2, 5, 10, 30, 60].find((s) => ext / s <= 10) || 90;
  for (let v = -Math.floor(ext / step) * step; v <= ext; v += step) {
    out.push(`<line x1="${sx(v)}" x2="${sx(v)}" y1="0" y2="${H}" stroke="#2a3350" stroke-width="0.5"/>`,
      `<line y1="${sy(v + yc)}" y2="${sy(v + yc)}" x1="0" x2="${W}" stroke="#2a3350" stroke-width="0.5"/>`);
  }
  out.push(...coverageCells(model, proj, plate, ra0, dec0, sx, sy));
  const dots = [];
  for (const { f, xy } of shapes) {  // footprints first, so that every pointing is on top
    const on = selected.has(f.row);
    const points = xy.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ");
    const label = escText(f.label);
    out.push(`<polygon points="${points}" data-row="${f.row}" class="ctanb-footprint${on ? " ctanb-on" : ""}" ` +
      `fill="${on ? "rgba(255,200,0,0.35)" : "rgba(80,160,255,0.08)"}" stroke="${on ? "#ffc800" : "#50a0ff"}" ` +
      `stroke-width="${on ? 2 : 1}"><title>${label}</title></polygon>`);
    const [px, py] = proj.point(f.ra, f.dec);
    dots.push(`<circle cx="${sx(px).toFixed(1)}" cy="${sy(py).toFixed(1)}" r="${fps.length > 200 ? 2.5 : 5}" fill="${on ? "#ffc800" : "#9fd0ff"}" ` +
      `data-row="${f.row}" data-label="${label}" class="ctanb-pointing${on ? " ctanb-on" : ""}"><title>${label}</title></circle>`);
  }
  out.push(...dots);
  if (target && target.ra !== undefined) {
    const [tx, ty] = proj.point(target.ra, target.dec);
    out.push(`<path d="M${sx(tx) - 7},${sy(ty)}h14M${sx(tx)},${sy(ty) - 7}v14" stroke="#ff4d4d" stroke-width="2"/>`,
      `<text x="${sx(tx) + 8}" y="${sy(ty) - 8}" fill="#ff8080" font-size="12">${escText(target.name || "target")}</text>`);
  }
  out.push(`<text x="6" y="${H - 8}" fill="#8890b0" font-size="10">${proj.name} at RA ${ra0.toFixed(2)}, ` +
    `Dec ${dec0.toFixed(2)}; grid ${step} deg; ${fps.length} footprint(s)</text>`);
  // Axis labels and a legend, so the plot reads on its own.
  const xLabel = plate ? "RA - RA0 (deg), east to the left" : "offset in RA (deg), east to the left";
  out.push(`<text class="ctanb-axis-label" x="${W / 2}" y="${H - 22}" fill="#c0c8e0" font-size="11" text-anchor="middle">${xLabel}</text>`,
    `<text class="ctanb-axis-label" x="12" y="${H / 2}" fill="#c0c8e0" font-size="11" text-anchor="middle" transform="rotate(-90 12 ${H / 2})">${plate ? "Dec (deg)" : "offset in Dec (deg)"}</text>`);
  const legend = [["#50a0ff", "footprint"], ["#9fd0ff", "pointing"], ["#ffc800", "selected"], ["#ff4d4d", "target"]];
  out.push(`<g class="ctanb-legend">` + legend.map(([c, t], i) =>
    `<rect x="${W - 86}" y="${22 + i * 14}" width="9" height="9" fill="${c}"/><text x="${W - 72}" y="${30 + i * 14}" fill="#c0c8e0" font-size="10">${t}</text>`).join("") + `</g>`);
  // The kernel's word (e.g. "nothing to draw") comes before the front end's own note.
  const said = model.get("message") || note;
  if (said) out.push(`<text x="6" y="14" fill="#c0c8e0" font-size="10" class="ctanb-sky-message">${escText(said)}</text>`);
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.innerHTML = out.join("");
}

// Coverage MOCs (issue 18): the kernel sends each layer's HEALPix cells as polygons;
// cells on the far side of a tangent plane, or across RA +-180 of a plate carree, are left out.
function coverageCells(model, proj, plate, ra0, dec0, sx, sy) {
  const out = [];
  for (const layer of model.get("coverage") || []) {
    const polys = [];
    for (const cell of layer.cells || []) {
      if (!plate && cell.some(([a, b]) => Math.sin(dec0 * D2R) * Math.sin(b * D2R) +
          Math.cos(dec0 * D2R) * Math.cos(b * D2R) * Math.cos((a - ra0) * D2R) < 0.2)) continue;
      const xy = cell.map(([a, b]) => proj.point(a, b));
      if (plate && Math.max(...xy.map((p) => p[0])) - Math.min(...xy.map((p) => p[0])) > 180) continue;
      polys.push(xy.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" "));
    }
    out.push(`<g class="ctanb-coverage" data-layer="${escText(layer.name)}" fill="${layer.color}" fill-opacity="0.3" stroke="none">` +
      polys.map((p) => `<polygon points="${p}"/>`).join("") + `<title>${escText(layer.name)} coverage</title></g>`);
  }
  return out;
}

function render({ model, el }) {
  el.classList.add("ctanb-skyview");
  el.innerHTML = `<div class="ctanb-aladin"></div><svg class="ctanb-skyplot" role="img" aria-label="Footprints"></svg>`;
  const aladinDiv = el.querySelector(".ctanb-aladin");
  const svg = el.querySelector(".ctanb-skyplot");
  let aladin = null, A = null, overlay = null, pointings = null, targetCat = null;
  let note = "";
  const status = (mode, message) => { model.set("mode", mode); model.set("status", message); model.save_changes(); };

  svg.addEventListener("click", (e) => {
    const node = e.target.closest("[data-row]");
    if (node) model.send({ command: "toggle", row: parseInt(node.dataset.row, 10) });
  });

  function drawAladin() {
    if (!aladin) return;
    const selected = new Set(model.get("selected_rows"));
    overlay.removeAll(); pointings.removeAll(); targetCat.removeAll();
    // One batched call per layer (each add redraws the view in Aladin Lite).
    const polys = [], sources = [];
    for (const f of model.get("footprints")) {
      const on = selected.has(f.row);
      if (f.polygon.length > 2) {
        const poly = A.polygon(f.polygon, { color: on ? "#ffc800" : "#50a0ff", lineWidth: on ? 3 : 1 });
        poly.ctanbRow = f.row;
        polys.push(poly);
      }
      sources.push(A.source(f.ra, f.dec, { row: f.row, label: f.label }));
    }
    overlay.addFootprints(polys);
    pointings.addSources(sources);
    const target = model.get("target");
    if (target && target.ra !== undefined) {
      targetCat.addSources([A.source(target.ra, target.dec, { name: target.name })]);
      aladin.gotoRaDec(target.ra, target.dec);
    }
    aladin.setFoV(model.get("fov"));
    drawCoverage();
  }

  let mocLayers = [];
  function drawCoverage() {  // issue 18: the archive's and the results' MOCs
    for (const m of mocLayers) { try { aladin.removeLayer(m); } catch (e) { /* already gone */ } }
    mocLayers = [];
    for (const layer of model.get("coverage") || []) {
      const moc = A.MOCFromJSON(layer.moc, { name: layer.name, color: layer.color, opacity: 0.3, lineWidth: 1 });
      aladin.addMOC(moc);
      mocLayers.push(moc);
    }
  }

  // Trait changes arrive in bursts (footprints and selected_rows of one search): draw
  // once per animation frame, not once per change.
  let pending = false;
  function redraw() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; drawPlot(model, svg, note); drawAladin(); });
  }

  if (model.get("use_aladin")) {
    status("plot", "loading Aladin Lite");
    loadAladin(model)
      .then(async (lib) => {
        A = lib;
        await A.init;
        const [ra, dec] = centre(model);
        aladin = A.aladin(aladinDiv, {
          target: `${ra} ${dec}`, fov: model.get("fov"), survey: model.get("survey"),
          showCooGrid: true, showReticle: false, showProjectionControl: false,
          showFullscreenControl: false, showLayersControl: false, showShareControl: false,
        });
        overlay = A.graphicOverlay({ name: "footprints", color: "#50a0ff" });
        aladin.addOverlay(overlay);
        pointings = A.catalog({ name: "pointings", sourceSize: 8, color: "#9fd0ff" });
        targetCat = A.catalog({ name: "target", shape: "cross", sourceSize: 14, color: "#ff4d4d" });
        aladin.addCatalog(pointings); aladin.addCatalog(targetCat);
        aladin.on("objectClicked", (obj) => {
          const row = obj && (obj.ctanbRow ?? (obj.data && obj.data.row));
          if (row !== undefined && row !== null) model.send({ command: "toggle", row });
        });
        note = "HiPS tiles need the network: offline, Aladin shows the overlays on a blank sky";
        redraw();
        status("aladin", "Aladin Lite " + (A.VERSION || "") + " from ctanb/static");
      })
      .catch((err) => {
        aladinDiv.style.display = "none";
        note = `Aladin Lite unavailable (${err && err.message ? err.message : err}): plain sky plot`;
        drawPlot(model, svg, note);
        status("plot", note);
      });
  } else {
    aladinDiv.style.display = "none";
    status("plot", "plain sky plot (Aladin Lite switched off)");
  }

  model.on("change:footprints", redraw);
  model.on("change:target", redraw);
  model.on("change:selected_rows", redraw);
  model.on("change:message", redraw);
  model.on("change:coverage", redraw);
  drawPlot(model, svg, note);
  return () => { if (aladinDiv) aladinDiv.innerHTML = ""; };
}

export default { render };
