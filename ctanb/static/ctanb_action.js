/* Built by widgets/build.py from widgets/action/action.js: do not edit. */
// ActionButton front end: a button whose click carries what the form's inputs hold now.
//
// ipywidgets queues a model's state updates while the kernel is busy, but sends a
// button's click at once: a name typed and Resolve clicked at once reached the kernel
// click first, and the old name was resolved. The inputs' front-end models already
// hold what the user typed, so the click sends those values along with it.
function paint(model, button) {
  const style = model.get("button_style");
  button.className = "lm-Widget jupyter-widgets jupyter-button widget-button ctanb-action" +
    (style ? ` mod-${style}` : "");
  button.disabled = model.get("disabled");
  button.title = model.get("tooltip") || model.get("description");
  button.textContent = "";
  const icon = model.get("icon");
  if (icon) {
    const i = document.createElement("i");
    i.className = `fa fa-${icon}`;
    if (model.get("description")) i.style.marginRight = "4px";
    button.appendChild(i);
  }
  button.appendChild(document.createTextNode(model.get("description")));
}

async function currentValues(model) {
  const values = {};
  for (const ref of model.get("inputs") || []) {
    const id = String(ref).replace(/^IPY_MODEL_/, "");
    try {
      const input = await model.widget_manager.get_model(id);
      // Selection widgets (Dropdown) keep the index in the front end, not the value.
      const index = input.get("index");
      values[id] = index !== undefined ? { index } : { value: input.get("value") };
    } catch (err) {
      console.warn("ctanb: input not found", id, err);
    }
  }
  return values;
}

function render({ model, el }) {
  const button = document.createElement("button");
  button.type = "button";
  paint(model, button);
  for (const name of ["description", "icon", "button_style", "disabled", "tooltip"]) {
    model.on(`change:${name}`, () => paint(model, button));
  }
  button.addEventListener("click", async () => {
    model.send({ command: "click", values: await currentValues(model) });
  });
  el.classList.add("ctanb-action-box");
  el.appendChild(button);
}

export default { render };
