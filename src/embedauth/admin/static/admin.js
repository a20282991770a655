// The admin page: reads config.json, signs in (or relies on the embedding app's sign-in), then
// shows the registrations, the permission catalog and the admin's own API tokens.
import { Api } from "./api.js";
import { AppsView } from "./apps.js";
import { AuditView } from "./audit.js";
import { PermissionsView, TokensView } from "./catalog.js";
import { $, $$, fill, h } from "./dom.js";
import { RegistrationsView } from "./registrations.js";

const VIEWS = ["sign-in", "signed-out", "registrations", "apps", "permissions", "audit", "tokens"];

function show(view) {
  for (const name of VIEWS) $(`#view-${name}`).hidden = name !== view;
  for (const button of $$("#sections button")) {
    if (button.dataset.view === view) button.setAttribute("aria-current", "page");
    else button.removeAttribute("aria-current");
  }
}

/** "1 year", "2 years", "90 days". */
function lifetime(days) {
  if (days % 365 !== 0) return days === 1 ? "1 day" : `${days} days`;
  return days === 365 ? "1 year" : `${days / 365} years`;
}

async function main() {
  const config = await (await fetch("config.json", { cache: "no-store" })).json();
  document.title = `${config.product_name} · App registrations`;
  fill($("#product-name"), config.product_name);
  for (const select of $$("select[data-lifetimes]")) {
    fill(select, config.secret_lifetime_days.map((days) =>
      h("option", { value: days, selected: days === config.default_secret_days }, lifetime(days))));
  }
  const graces = [[3600, "Keep working for 1 hour"], [86400, "Keep working for 24 hours"], [604800, "Keep working for 7 days"]];
  fill($("#grace-seconds"), h("option", { value: 0 }, "Stop working at once"),
    graces.filter(([seconds]) => seconds <= config.max_rotation_grace).map(([seconds, text]) => h("option", { value: seconds }, text)));
  const api = new Api(config.api);
  const views = {
    registrations: new RegistrationsView(api),
    apps: new AppsView(api),
    permissions: new PermissionsView(api),
    audit: new AuditView(api),
    tokens: new TokensView(api),
  };
  let signed = false;

  const signedOut = () => {
    api.token = null;
    signed = false;
    for (const dialog of $$("dialog[open]")) dialog.close();
    $("#sections").hidden = $("#who").hidden = $("#sign-out").hidden = true;
    if (config.sign_in === "client_credentials") {
      show("sign-in");
      $("#sign-in-client-id").focus();
    } else {
      $("#sign-in-link").href = config.sign_in_url || "/";
      show("signed-out");
    }
  };
  api.onUnauthorized = () => { if (signed) signedOut(); };

  const signedIn = async () => {
    const session = await api.get("/session");
    for (const view of Object.values(views)) view.start(session);
    signed = true;
    fill($("#who"), session.admin);
    $("#sections").hidden = $("#who").hidden = false;
    $("#sign-out").hidden = config.sign_in !== "client_credentials";
    open("registrations");
  };

  const open = (name) => {
    show(name);
    views[name].load();
  };
  for (const button of $$("#sections button")) button.addEventListener("click", () => open(button.dataset.view));
  $("#sign-out").addEventListener("click", () => { $("#sign-in-form").reset(); signedOut(); });

  $("#sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("#sign-in-error");
    fill(error, "");
    try {
      await api.signIn(config.token_endpoint, $("#sign-in-client-id").value.trim(), $("#sign-in-secret").value);
      $("#sign-in-secret").value = "";
      await signedIn();
    } catch (problem) {
      api.token = null;
      fill(error, problem.status === 403 ? "That registration is not an admin (it lacks embedauth:admin)." : problem.message);
    }
  });

  if (config.sign_in === "client_credentials") signedOut();
  else {
    try {
      await signedIn(); // the embedding app's own sign-in (a cookie, a proxy's header)
    } catch {
      signedOut();
    }
  }
}

main();
