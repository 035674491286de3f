// ResultsTable front end: draws the page the kernel sends; every action is a trait
// change or a named command, the kernel keeps the state.
const esc = (s) =>
  String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

function render({ model, el }) {
  el.classList.add("ctanb-table");
  el.innerHTML = `
    <div class="ctanb-table-bar">
      <button class="ctanb-prev" title="Previous page">&#9664;</button>
      <span class="ctanb-pageinfo"></span>
      <button class="ctanb-next" title="Next page">&#9654;</button>
      <label>rows per page <select class="ctanb-pagesize"></select></label>
      <details class="ctanb-columns"><summary>Columns</summary><div class="ctanb-columns-list"></div></details>
      <span class="ctanb-selinfo"></span>
    </div>
    <div class="ctanb-table-scroll"><table><thead></thead><tbody></tbody></table></div>`;
  const q = (sel) => el.querySelector(sel);
  const thead = q("thead"), tbody = q("tbody");

  function drawHead() {
    const sortBy = model.get("sort_by"), asc = model.get("sort_ascending");
    const info = model.get("column_info") || {};
    const cols = model.get("visible_columns")
      .map((c) => `<th data-col="${esc(c)}" title="${esc((info[c] ? info[c] + "\n" : "") + "Click to sort by " + c)}">${esc(c)}${
        c === sortBy ? (asc ? " &#9650;" : " &#9660;") : ""}</th>`).join("");
    thead.innerHTML = `<tr><th><input type="checkbox" class="ctanb-all" title="Select all on this page"></th>${cols}</tr>`;
  }

  function drawBody() {
    const data = model.get("page_data") || { index: [], cells: [] };
    const selected = new Set(model.get("selected_rows"));
    const index = data.index || [], cells = data.cells || [];
    const focus = model.get("focus_row");
    const parts = new Array(index.length);
    for (let i = 0; i < index.length; i++) {
      const row = index[i];
      let tds = "";
      for (let c = 0; c < cells.length; c++) tds += `<td>${esc(cells[c][i])}</td>`;
      const on = selected.has(row);
      const cls = [on ? "ctanb-selected" : "", row === focus ? "ctanb-focus" : ""].join(" ").trim();
      parts[i] = `<tr data-row="${row}"${cls ? ` class="${cls}"` : ""}><td><input type="checkbox" data-row="${row}"${on ? " checked" : ""}></td>${tds}</tr>`;
    }
    tbody.innerHTML = parts.join("");
    const all = q(".ctanb-all");
    if (all) all.checked = index.length > 0 && index.every((r) => selected.has(r));
    const focused = tbody.querySelector("tr.ctanb-focus");
    if (focused) focused.scrollIntoView({ block: "nearest" });  // the row clicked on the sky
    el.dataset.renderedRows = String(index.length);
    el.dataset.renderedAt = String(performance.now());
    drawInfo();
  }

  function drawInfo() {
    const n = model.get("row_count"), size = model.get("page_size"), page = model.get("page");
    const pages = Math.max(1, Math.ceil(n / Math.max(size, 1)));
    q(".ctanb-pageinfo").textContent = `page ${page + 1} / ${pages} (${n} rows)`;
    q(".ctanb-selinfo").textContent = `${model.get("selected_rows").length} selected`;
    const select = q(".ctanb-pagesize");
    select.innerHTML = model.get("page_sizes")
      .map((s) => `<option value="${s}"${s === size ? " selected" : ""}>${s}</option>`).join("");
  }

  function drawColumns() {
    const shown = new Set(model.get("visible_columns"));
    q(".ctanb-columns-list").innerHTML = model.get("columns")
      .map((c) => `<label title="${esc((model.get("column_info") || {})[c] || "")}"><input type="checkbox" value="${esc(c)}"${shown.has(c) ? " checked" : ""}> ${esc(c)}</label>`)
      .join("");
  }

  const set = (name, value) => { model.set(name, value); model.save_changes(); };
  q(".ctanb-prev").addEventListener("click", () => model.send({ command: "go_to", page: model.get("page") - 1 }));
  q(".ctanb-next").addEventListener("click", () => model.send({ command: "go_to", page: model.get("page") + 1 }));
  q(".ctanb-pagesize").addEventListener("change", (e) => set("page_size", parseInt(e.target.value, 10)));
  q(".ctanb-columns-list").addEventListener("change", () => {
    const order = model.get("columns");
    const checked = new Set([...el.querySelectorAll(".ctanb-columns-list input:checked")].map((i) => i.value));
    set("visible_columns", order.filter((c) => checked.has(c)));
  });
  thead.addEventListener("click", (e) => {
    if (e.target.classList.contains("ctanb-all")) {
      model.send({ command: e.target.checked ? "select_page" : "clear_page" });
      return;
    }
    const th = e.target.closest("th[data-col]");
    if (th) model.send({ command: "sort", column: th.dataset.col });
  });
  tbody.addEventListener("click", (e) => {
    const box = e.target.closest("input[data-row]");
    if (box) model.send({ command: "toggle", row: parseInt(box.dataset.row, 10) });
  });

  model.on("change:page_data", () => { drawHead(); drawBody(); });
  model.on("change:selected_rows", drawBody);
  model.on("change:focus_row", drawBody);
  model.on("change:row_count", drawInfo);
  model.on("change:columns", drawColumns);
  model.on("change:visible_columns", drawColumns);
  drawHead(); drawBody(); drawColumns();
}

export default { render };
