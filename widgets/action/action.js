// ActionButton front end: a button whose click carries what the form's inputs hold now.
//
// ipywidgets holds back a model's state update while an earlier one of the same model
// is unanswered (a busy kernel), but sends a button's click at once: a name typed and
// Resolve clicked at once reached the kernel click first, and the old name was
// resolved. The click now carries the inputs' held-back edits.
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

// Only what the user changed and ipywidgets still holds back (its update queued behind
// a busy kernel) is sent: every other value is either on its way ahead of the click or
// a copy of what the kernel set, which may be older than the kernel's own state (the
// RA/Dec a resolve just filled in) and must not overwrite it.
function heldBack(input) {
  const held = Object.assign({}, input._msg_buffer || {}, input._buffered_state_diff || {});
  if ("index" in held) return { index: held.index };
  if ("value" in held) return { value: held.value };
  return null;
}

async function currentValues(model) {
  const values = {};
  for (const ref of model.get("inputs") || []) {
    const id = String(ref).replace(/^IPY_MODEL_/, "");
    try {
      const held = heldBack(await model.widget_manager.get_model(id));
      if (held) values[id] = held;
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
