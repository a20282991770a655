// The dialogs every view shares: confirm, choose a lifetime, the secret shown once, and how a
// problem from the API is shown in a form (each refused field marked, the rest in the alert line).
import { $, $$, copy, fill } from "./dom.js";

for (const dialog of $$("dialog")) {
  for (const button of $$("[data-close]", dialog)) button.addEventListener("click", () => dialog.close("cancel"));
}

/** Open ``dialog`` modally and answer its return value once it closes. */
export function run(dialog) {
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

/** Ask before something that cannot be undone; true when confirmed. */
export async function confirm(title, text, action) {
  const dialog = $("#confirm-dialog");
  fill($("#confirm-title"), title);
  fill($("#confirm-text"), text);
  fill($("#confirm-ok"), action);
  return (await run(dialog)) === "ok";
}

/** Ask for a lifetime in days (and, with ``grace``, how long the current secrets keep working),
 * then ``submit(days, graceSeconds)``; the dialog stays open on a problem. */
export function lifetime({ title, text, label, action, submit, grace = false }) {
  const dialog = $("#lifetime-dialog");
  const form = $("#lifetime-form");
  $("#grace-field").hidden = !grace;
  $("#grace-seconds").selectedIndex = 0;
  fill($("#lifetime-title"), title);
  fill($("#lifetime-text"), text);
  fill($("#lifetime-label"), label);
  fill($("#lifetime-submit"), action);
  showProblem(form, null);
  form.onsubmit = async (event) => {
    event.preventDefault();
    try {
      await submit(Number($("#lifetime-days").value), grace ? Number($("#grace-seconds").value) : 0);
      dialog.close("ok");
    } catch (problem) {
      showProblem(form, problem);
    }
  };
  dialog.returnValue = "";
  dialog.showModal();
}

/** The secret, shown once: its holder's ID and the secret with copy buttons, gone from the page once
 * closed. ``labels`` name the two (a client ID and secret by default, or a refresh token). */
export function showSecret(created, labels = {}) {
  const dialog = $("#secret-dialog");
  fill($("#secret-title"), labels.title || "Copy the client secret now");
  fill($("label[for=secret-client-id]"), labels.id || "Client ID");
  fill($("label[for=secret-value]"), labels.secret || "Client secret");
  fill($("[data-copy=secret-client-id]"), labels.id ? `Copy ${labels.id.toLowerCase()}` : "Copy client ID");
  fill($("[data-copy=secret-value]"), labels.secret ? `Copy ${labels.secret.toLowerCase()}` : "Copy secret");
  $("#secret-client-id").value = created.client_id;
  $("#secret-value").value = created.client_secret;
  fill($("#secret-expiry"), created.secret_expires_at ? `It works until ${created.secret_expires_at.slice(0, 10)}.` : "");
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      $("#secret-value").value = "";
      resolve();
    }, { once: true });
    dialog.showModal();
    $("#secret-value").select();
  });
}

$("#secret-done").addEventListener("click", () => $("#secret-dialog").close());
for (const button of $$("[data-copy]")) {
  button.addEventListener("click", async () => {
    const input = document.getElementById(button.dataset.copy);
    const label = button.textContent;
    const copied = await copy(input.value);
    if (!copied) input.select(); // the reader copies it by hand
    button.textContent = copied ? "Copied" : "Press Ctrl+C";
    setTimeout(() => { button.textContent = label; }, 2000);
  });
}

/** Show ``problem`` in ``form``: each field the API refused marked beside its input, the rest in the
 * form's alert line. ``null`` clears them. */
export function showProblem(form, problem) {
  for (const marked of $$("[aria-invalid]", form)) {
    marked.removeAttribute("aria-invalid");
    marked.removeAttribute("aria-errormessage");
  }
  for (const message of $$(".field-error", form)) message.remove();
  const alert = $(".error[role=alert]", form);
  if (alert) fill(alert, "");
  if (!problem) return;
  const unplaced = [];
  for (const { field, reason } of problem.errors || []) {
    const input = form.elements.namedItem(field) || $(`[data-field="${CSS.escape(field)}"]`, form);
    if (input && input.id) {
      const message = document.createElement("p");
      message.className = "field-error";
      message.id = `${input.id}-error`;
      message.textContent = reason;
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-errormessage", message.id);
      input.closest(".field").append(message);
    } else {
      unplaced.push(field ? `${field}: ${reason}` : reason);
    }
  }
  const text = unplaced.length ? unplaced.join("; ") : problem.errors?.length ? "" : problem.message;
  if (alert) fill(alert, text);
  const first = $("[aria-invalid]", form);
  if (first) first.focus();
}

/** A short message at the foot of the page. */
export function toast(text) {
  const element = $("#toast");
  fill(element, text);
  element.classList.add("shown");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => element.classList.remove("shown"), 4000);
}
