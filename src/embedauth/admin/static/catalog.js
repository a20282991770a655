// The permissions view (the catalog: everyone reads it, catalog admins change it) and the
// signed-in admin's own API refresh tokens.
import { confirm, showProblem, showSecret, toast } from "./dialogs.js";
import { $, dateCell, debounce, fill, h, usedAgo } from "./dom.js";

export class PermissionsView {
  constructor(api) {
    this.api = api;
    $("#permission-filter").addEventListener("input", debounce(() => this.load(), 150));
    $("#permission-form").addEventListener("submit", (event) => { event.preventDefault(); this.add(); });
  }

  start(session) {
    this.session = session;
    $("#permission-form").hidden = !session.manages_catalog;
  }

  async load() {
    try {
      const { items } = await this.api.get("/permissions", { contains: $("#permission-filter").value.trim() });
      fill($("#permission-body"), items.map((p) => h("tr", {},
        h("td", { "data-label": "Name" }, h("code", {}, p.name)),
        h("td", { "data-label": "Access" }, h("span", { class: `access ${p.access}` }, p.access)),
        h("td", { "data-label": "Description" }, p.description || "—"),
        h("td", {}, this.session.manages_catalog ? h("button", {
          type: "button", class: "small danger", "aria-label": `Remove ${p.name}`, onclick: () => this.remove(p.name),
        }, "Remove") : null))));
    } catch (problem) {
      toast(problem.message);
    }
  }

  async add() {
    const form = $("#permission-form");
    showProblem(form, null);
    try {
      await this.api.post("/permissions", {
        name: $("#permission-name").value.trim(),
        description: $("#permission-description").value,
        access: $("#permission-access").value,
      });
      form.reset();
      toast("Permission added.");
      this.load();
    } catch (problem) {
      showProblem(form, problem);
    }
  }

  async remove(name) {
    if (!(await confirm(`Remove ${name}?`, "Registrations can no longer be given it.", "Remove permission"))) return;
    try {
      await this.api.delete(`/permissions/${encodeURIComponent(name)}`);
      toast(`Removed ${name}.`);
    } catch (problem) {
      toast(problem.message); // 409 names the registrations that hold it
    }
    this.load();
  }
}

export class TokensView {
  constructor(api) {
    this.api = api;
    $("#new-token").addEventListener("click", () => this.create());
  }

  start(session) {
    this.session = session;
  }

  async load() {
    try {
      const { items } = await this.api.get("/refresh-tokens");
      fill($("#token-body"), items.map((t) => h("tr", {},
        h("td", { "data-label": "Created" }, dateCell(t.created_at), " ", h("code", {}, `${t.hint}…`)),
        h("td", { "data-label": "Site" }, t.tenant || "—"),
        h("td", { "data-label": "Permissions" }, t.scopes.join(" ") || "all of yours"),
        h("td", { "data-label": "Last used" }, usedAgo(t.last_used_at)),
        h("td", { "data-label": "Status" }, t.revoked_at ? h("span", { class: "pill off" }, "Revoked") : h("span", { class: "pill on" }, "Active")),
        h("td", {}, t.revoked_at ? null : h("button", {
          type: "button", class: "small danger", "aria-label": `Revoke the token made ${t.created_at.slice(0, 10)}`,
          onclick: () => this.revoke(t),
        }, "Revoke")))));
    } catch (problem) {
      toast(problem.message);
    }
  }

  async create() {
    try {
      const made = await this.api.post("/refresh-tokens", {});
      await showSecret({ client_id: made.user, client_secret: made.refresh_token },
        { title: "Copy the API token now", id: "Signed in as", secret: "Refresh token" });
      this.load();
    } catch (problem) {
      toast(problem.message);
    }
  }

  async revoke(token) {
    if (!(await confirm("Revoke this token?", "Scripts using it stop working at once.", "Revoke token"))) return;
    try {
      await this.api.post(`/refresh-tokens/${encodeURIComponent(token.id)}/revoke`);
      toast("Revoked.");
    } catch (problem) {
      toast(problem.message);
    }
    this.load();
  }
}
