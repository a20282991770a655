// The apps view: the apps this admin's sites may connect (connect, pause, resume, disconnect) and
// the apps their sites offer (define, edit, delete, see who connected with what, never a secret).
import { reg } from "./api.js";
import { confirm, run, showProblem, showSecret, toast } from "./dialogs.js";
import { $, $$, dateCell, fill, h, usedAgo } from "./dom.js";
import { ScopePicker } from "./picker.js";

const app = (id, rest = "") => `/apps/${encodeURIComponent(id)}${rest}`;

export class AppsView {
  constructor(api) {
    this.api = api;
    this.picker = new ScopePicker(api, "app-scope");
    $("#new-app").addEventListener("click", () => this.openEditor(null));
    $("#app-form").addEventListener("submit", (event) => { event.preventDefault(); this.saveEditor(); });
    $("#connect-form").addEventListener("submit", (event) => { event.preventDefault(); this.connect(); });
    for (const radio of $$("input[name=allowed_kind]")) {
      radio.addEventListener("change", () => { $("#app-allowed-field").hidden = this.allowedKind() === "any"; });
    }
  }

  start(session) {
    this.session = session;
    fill($("#app-owner"), session.tenants.map((t) => h("option", { value: t }, t)));
  }

  async load() {
    try {
      const [offered, own, mine] = await Promise.all([
        this.api.get("/connectable-apps"), this.api.get("/apps"), this.api.get("/connections"),
      ]);
      this.drawConnectable(offered.items, mine.items);
      this.drawOwn(own.items);
    } catch (problem) {
      toast(problem.message);
    }
  }

  // ------------------------------------------------------------------ connecting

  drawConnectable(apps, connections) {
    const rows = apps.map((a) => {
      const links = connections.filter((c) => c.app_id === a.app_id);
      const open = this.session.tenants.filter((t) => !a.connected.includes(t));
      return h("tr", {},
        h("td", { "data-label": "App" }, h("strong", {}, a.name), a.description ? h("span", { class: "tenant" }, a.description) : null),
        h("td", { "data-label": "From" }, a.owner),
        h("td", { "data-label": "Requests" }, permissionChips(a.permissions)),
        h("td", { "data-label": "Connected" }, links.length ? h("ul", { class: "plain" }, links.map((c) => this.connectionItem(a, c))) : "no"),
        h("td", {}, open.length ? h("button", { type: "button", onclick: () => this.openConnect(a, open) }, `Connect ${a.name}`) : null));
    });
    fill($("#connectable-body"), rows);
    $("#connectable-empty").hidden = rows.length > 0;
  }

  connectionItem(a, c) {
    const change = (verb, done) => async () => {
      try {
        await this.api.post(reg(c.client_id, `/${verb}`));
        toast(done);
      } catch (problem) {
        toast(problem.message);
      }
      this.load();
    };
    return h("li", {},
      h("span", {}, `${c.tenant}: ${c.scopes.join(" ") || "no permissions"} `),
      h("span", { class: c.enabled ? "pill on" : "pill off" }, c.enabled ? "Active" : "Paused"), " ",
      c.enabled
        ? h("button", { type: "button", class: "small", onclick: change("disable", `Paused ${a.name} for ${c.tenant}.`) }, `Pause for ${c.tenant}`)
        : h("button", { type: "button", class: "small", onclick: change("enable", `Resumed ${a.name} for ${c.tenant}.`) }, `Resume for ${c.tenant}`),
      " ",
      h("button", {
        type: "button", class: "small danger",
        onclick: async () => {
          if (!(await confirm(`Disconnect ${a.name} from ${c.tenant}?`, "Its client ID and secrets for this site stop working at once.", "Disconnect"))) return;
          try {
            await this.api.delete(reg(c.client_id));
            toast(`Disconnected ${a.name} from ${c.tenant}.`);
          } catch (problem) {
            toast(problem.message);
          }
          this.load();
        },
      }, `Disconnect from ${c.tenant}`));
  }

  openConnect(a, tenants) {
    this.connecting = a;
    const form = $("#connect-form");
    showProblem(form, null);
    fill($("#connect-title"), `Connect ${a.name}`);
    fill($("#connect-text"), `${a.name} (from ${a.owner}) gets its own client ID and secret for the site you pick.`);
    fill($("#connect-tenant"), tenants.map((t) => h("option", { value: t }, t)));
    $("#connect-tenant-field").hidden = tenants.length < 2 && this.session.tenants.length < 2;
    fill($("#connect-scope-list"), a.permissions.map((p) => h("label", { class: "check" },
      h("input", { type: "checkbox", name: "allow", value: p.name, checked: true }),
      h("span", {}, h("code", {}, p.name), " ", h("span", { class: `access ${p.access}` }, p.access), p.description ? ` ${p.description}` : ""))));
    run($("#connect-dialog"));
  }

  async connect() {
    const a = this.connecting;
    const form = $("#connect-form");
    const scopes = $$("input[name=allow]:checked", form).map((box) => box.value);
    try {
      const created = await this.api.post(`/connectable-apps/${encodeURIComponent(a.app_id)}/connect`, {
        tenant: $("#connect-tenant").value, scopes, secret_days: Number($("#connect-lifetime").value),
      });
      $("#connect-dialog").close("ok");
      await showSecret(created, { title: `Copy ${a.name}'s secret now` });
      this.load();
    } catch (problem) {
      showProblem(form, problem);
    }
  }

  // ------------------------------------------------------------------ offering

  drawOwn(apps) {
    const rows = apps.map((a) => h("tr", {},
      h("td", { "data-label": "Name" }, h("button", { type: "button", class: "link", onclick: () => this.openDetail(a.app_id) }, a.name)),
      h("td", { "data-label": "Requests" }, a.scopes.join(" ") || "nothing"),
      h("td", { "data-label": "May connect" }, a.allowed_tenants === null ? "any site" : a.allowed_tenants.join(", ") || "no site"),
      h("td", { "data-label": "Connections", class: "connections", dataset: { appId: a.app_id } }, "…")));
    fill($("#app-body"), rows);
    $("#app-empty").hidden = rows.length > 0;
    for (const a of apps) {
      this.api.get(app(a.app_id, "/connections")).then(({ items }) => {
        const cell = $(`td.connections[data-app-id="${CSS.escape(a.app_id)}"]`);
        if (cell) fill(cell, String(items.length));
      }).catch(() => {});
    }
  }

  allowedKind() {
    return $("input[name=allowed_kind]:checked").value;
  }

  openEditor(a) {
    this.editing = a;
    const form = $("#app-form");
    form.reset();
    showProblem(form, null);
    const creating = a === null;
    fill($("#app-title"), creating ? "New app" : `Edit ${a.name}`);
    fill($("#app-submit"), creating ? "Create app" : "Save");
    $("#app-owner-field").hidden = !creating || this.session.tenants.length < 2;
    $("#app-name").value = creating ? "" : a.name;
    $("#app-description").value = creating ? "" : a.description;
    this.picker.set(creating ? [] : a.scopes);
    const some = !creating && a.allowed_tenants !== null;
    $(`input[name=allowed_kind][value=${some ? "some" : "any"}]`).checked = true;
    $("#app-allowed").value = some ? a.allowed_tenants.join(", ") : "";
    $("#app-allowed-field").hidden = !some;
    run($("#app-dialog"));
    $("#app-name").focus();
  }

  async saveEditor() {
    const form = $("#app-form");
    const body = {
      name: $("#app-name").value,
      description: $("#app-description").value,
      scopes: this.picker.get(),
      allowed_tenants: this.allowedKind() === "any" ? null
        : $("#app-allowed").value.split(",").map((t) => t.trim()).filter(Boolean),
    };
    try {
      if (this.editing === null) {
        body.owner = $("#app-owner").value;
        await this.api.post("/apps", body);
        toast(`App ${body.name} created.`);
      } else {
        await this.api.patch(app(this.editing.app_id), body);
        toast("Saved.");
      }
      $("#app-dialog").close("ok");
      this.load();
      if (this.editing) this.openDetail(this.editing.app_id);
    } catch (problem) {
      const errors = (problem.errors || []).map((e) => ({ ...e, field: e.field.split(".")[0] }));
      showProblem(form, Object.assign(problem, { errors }));
    }
  }

  async openDetail(appId) {
    let a, links;
    try {
      [a, links] = await Promise.all([this.api.get(app(appId)), this.api.get(app(appId, "/connections"))]);
    } catch (problem) {
      toast(problem.message);
      return this.load();
    }
    fill($("#app-detail-title"), a.name);
    const facts = [
      ["App ID", h("code", {}, a.app_id)],
      ["Offered by", a.owner],
      ["Description", a.description || "—"],
      ["Requests", a.scopes.length ? h("ul", { class: "chips" }, a.scopes.map((s) => h("li", { class: "chip" }, s))) : "nothing"],
      ["May connect", a.allowed_tenants === null ? "any site" : a.allowed_tenants.join(", ") || "no site"],
      ["Created", dateCell(a.created_at)],
    ];
    const connections = links.items.length ? h("table", { class: "grid compact" },
      h("caption", { class: "visually-hidden" }, "Connections"),
      h("thead", {}, h("tr", {}, ["Site", "Allowed", "Status", "Connected by", "Connected", "Last used"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, links.items.map((c) => h("tr", {},
        h("td", { "data-label": "Site" }, c.tenant),
        h("td", { "data-label": "Allowed" }, c.scopes.join(" ") || "nothing"),
        h("td", { "data-label": "Status" }, h("span", { class: c.enabled ? "pill on" : "pill off" }, c.enabled ? "Active" : "Paused")),
        h("td", { "data-label": "Connected by" }, c.connected_by),
        h("td", { "data-label": "Connected" }, dateCell(c.connected_at)),
        h("td", { "data-label": "Last used" }, usedAgo(c.last_used_at))))))
      : h("p", { class: "empty" }, "No site has connected it yet.");
    fill($("#app-detail-body"),
      h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      h("div", { class: "actions left" },
        h("button", { type: "button", onclick: () => { $("#app-detail-dialog").close(); this.openEditor(a); } }, "Edit"),
        h("button", { type: "button", class: "danger", onclick: () => this.deleteApp(a, links.items.length) }, "Delete")),
      h("section", { "aria-labelledby": "app-connections-title" },
        h("h3", { id: "app-connections-title" }, "Connections"), connections));
    const dialog = $("#app-detail-dialog");
    if (!dialog.open) dialog.showModal();
  }

  async deleteApp(a, count) {
    const also = count ? ` Its ${count === 1 ? "connection" : `${count} connections`} and their secrets stop working at once.` : "";
    if (!(await confirm(`Delete ${a.name}?`, `This cannot be undone.${also}`, "Delete app"))) return;
    try {
      await this.api.delete(app(a.app_id));
      $("#app-detail-dialog").close();
      toast(`Deleted ${a.name}.`);
    } catch (problem) {
      toast(problem.message);
    }
    this.load();
  }
}

function permissionChips(permissions) {
  if (!permissions.length) return "nothing";
  return h("ul", { class: "chips" }, permissions.map((p) =>
    h("li", { class: "chip", title: p.description || p.name }, p.name, " ", h("span", { class: `access ${p.access}` }, p.access))));
}
