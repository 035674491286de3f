/* Built by widgets/build.py from widgets/skyview/skyview.js: do not edit. */
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

// A dark all-sky FITS image (plate carree, 10 deg pixels) made here: Aladin's base
// layer when no survey can be loaded, so nothing is fetched and nothing spins.
function blankSky() {
  const cards = ["SIMPLE  = T", "BITPIX  = 8", "NAXIS   = 2", "NAXIS1  = 36", "NAXIS2  = 18",
    "CTYPE1  = 'RA---CAR'", "CTYPE2  = 'DEC--CAR'", "CRPIX1  = 18.5", "CRPIX2  = 9.5",
    "CRVAL1  = 0.0", "CRVAL2  = 0.0", "CDELT1  = -10.0", "CDELT2  = 10.0",
    "DATAMIN = 0", "DATAMAX = 255", "END"];
  const text = cards.map((c) => c.replace(/^(.{8})= (.*)$/, (_, k, v) => `${k}= ${v.padStart(20)}`).padEnd(80)).join("");
  const header = text.padEnd(2880 * Math.ceil(text.length / 2880));
  const bytes = new Uint8Array(header.length + 2880);
  for (let i = 0; i < header.length; i++) bytes[i] = header.charCodeAt(i);
  bytes.fill(20, header.length, header.length + 36 * 18);
  return URL.createObjectURL(new Blob([bytes], { type: "application/fits" }));
}

// Rows whose footprint holds (ra, dec), or whose pointing is within *near* deg of it.
function runsAt(fps, ra, dec, near) {
  const rows = [];
  for (const f of fps) {
    const [px, py] = project(f.ra, f.dec, ra, dec);
    if (Math.hypot(px, py) <= near) { rows.push(f.row); continue; }
    if (f.polygon.length < 3) continue;
    const xy = f.polygon.map(([a, b]) => project(a, b, ra, dec));
    let inside = false;  // even-odd rule around the origin (the click)
    for (let i = 0, j = xy.length - 1; i < xy.length; j = i++) {
      const [xi, yi] = xy[i], [xj, yj] = xy[j];
      if ((yi > 0) !== (yj > 0) && 0 < ((xj - xi) * (0 - yi)) / (yj - yi) + xi) inside = !inside;
    }
    if (inside) rows.push(f.row);
  }
  return rows;
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
  el.innerHTML = `<div class="ctanb-aladin"></div><svg class="ctanb-skyplot" role="img" aria-label="Footprints"></svg>` +
    `<div class="ctanb-sky-choice" role="menu" hidden></div>`;
  const aladinDiv = el.querySelector(".ctanb-aladin");
  const svg = el.querySelector(".ctanb-skyplot");
  let aladin = null, A = null, overlay = null, pointings = null, targetCat = null, survey = "";
  let note = "";
  const status = (mode, message) => { model.set("mode", mode); model.set("status", message); model.save_changes(); };

  // One click selects one run: a pointing clicked is that run; a spot inside several
  // footprints offers the choice (it used to toggle every run there at once).
  const chooser = el.querySelector(".ctanb-sky-choice");
  const labels = () => new Map(model.get("footprints").map((f) => [f.row, f.label]));
  function choose(rows, x, y) {
    rows = [...new Set(rows)];
    chooser.hidden = true;
    if (rows.length === 1) model.send({ command: "toggle", row: rows[0] });
    if (rows.length < 2) return;
    const names = labels(), selected = new Set(model.get("selected_rows"));
    chooser.innerHTML = `<div class="ctanb-sky-choice-title">${rows.length} runs here: which one?</div>` +
      rows.map((r) => `<button type="button" data-row="${r}" class="${selected.has(r) ? "ctanb-on" : ""}">` +
        `${escText(names.get(r) ?? r)}${selected.has(r) ? " (selected)" : ""}</button>`).join("") +
      `<button type="button" class="ctanb-sky-choice-cancel">cancel</button>`;
    const box = el.getBoundingClientRect();
    chooser.style.left = `${Math.max(0, x - box.left)}px`;
    chooser.style.top = `${Math.max(0, y - box.top)}px`;
    chooser.hidden = false;
  }
  chooser.addEventListener("click", (e) => {
    const button = e.target.closest("button");
    if (!button) return;
    chooser.hidden = true;
    if (button.dataset.row !== undefined) model.send({ command: "toggle", row: parseInt(button.dataset.row, 10) });
  });
  svg.addEventListener("click", (e) => {
    const hits = document.elementsFromPoint(e.clientX, e.clientY).filter((n) => svg.contains(n) && n.dataset && n.dataset.row !== undefined);
    const dots = hits.filter((n) => n.classList.contains("ctanb-pointing"));
    const chosen = dots.length ? dots : hits.filter((n) => n.classList.contains("ctanb-footprint"));
    choose(chosen.map((n) => parseInt(n.dataset.row, 10)), e.clientX, e.clientY);
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
  function dropMoc(moc) {
    // Aladin adds a MOC to its layers only once the MOC is parsed (asynchronously): one
    // removed before that would stay drawn for ever, so it is removed when it arrives.
    moc.ctanbDropped = true;
    if (moc.ready) { try { aladin.removeLayer(moc); } catch (e) { /* already gone */ } }
  }
  function drawCoverage() {  // issue 18: the archive's and the results' MOCs
    for (const m of mocLayers) dropMoc(m);
    mocLayers = [];
    for (const layer of model.get("coverage") || []) {
      // Filled cells: an outline alone is lost in the coordinate grid of a plain sky.
      const moc = A.MOCFromJSON(layer.moc, {
        name: layer.name, color: layer.color, fillColor: layer.color, fill: true, opacity: 0.3,
        lineWidth: 1, perimeter: true,
      }, (m) => setTimeout(() => { if (m.ctanbDropped) dropMoc(m); }, 0));
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
        // No survey (offline): a blank all-sky image instead of a HiPS that would spin
        // "loading" forever and put "fetching https://alasky..." over the view.
        survey = model.get("survey");
        aladin = A.aladin(aladinDiv, {
          target: `${ra} ${dec}`, fov: model.get("fov"),
          survey: survey || A.image(blankSky(), { name: "plain sky" }),
          showCooGrid: true, showReticle: false, showProjectionControl: false, showStatusBar: false,
          showFullscreenControl: false, showLayersControl: false, showShareControl: false,
        });
        if (survey) {
          // A survey that cannot load (no network): the plain sky, and say so.
          const fallback = (e) => {
            const why = String((e.reason && e.reason.message) || e.reason || "");
            if (!why.includes("HiPS") || !aladin) return;
            window.removeEventListener("unhandledrejection", fallback);
            aladin.setBaseImageLayer(A.image(blankSky(), { name: "plain sky" }));
            status("aladin", `the survey ${survey} cannot be loaded (no network?): a plain sky`);
          };
          window.addEventListener("unhandledrejection", fallback);
        }
        overlay = A.graphicOverlay({ name: "footprints", color: "#50a0ff" });
        aladin.addOverlay(overlay);
        pointings = A.catalog({ name: "pointings", sourceSize: 8, color: "#9fd0ff" });
        targetCat = A.catalog({ name: "target", shape: "cross", sourceSize: 14, color: "#ff4d4d" });
        aladin.addCatalog(pointings); aladin.addCatalog(targetCat);
        // Aladin's own objectClicked gives one of the overlapping shapes, whichever it
        // finds first: the runs under the click are found here, as on the plain plot.
        aladin.on("click", (e) => {
          if (!e || e.isDragging || e.ra === undefined) return;
          const rect = aladinDiv.getBoundingClientRect();
          choose(runsAt(model.get("footprints"), e.ra, e.dec, model.get("fov") / 60), rect.left + e.x, rect.top + e.y);
        });
        redraw();
        status("aladin", "Aladin Lite " + (A.VERSION || "") + " from ctanb/static" +
          (survey ? "" : "; no survey images (offline): a plain sky"));
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
