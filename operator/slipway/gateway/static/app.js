// Slipway's web page: sign in, pick a check, fill its form, watch it run, read the verdict.
// Plain JavaScript, no libraries. Every text from the server (tool messages above all) is put
// in the page with textContent, never as HTML. The token lives in this tab's sessionStorage
// and travels only in the Authorization header (or an auth proxy adds the header itself).
"use strict";

(function () {
  const KEY = "slipway.token";
  const main = document.getElementById("main");
  let stream = null; // the AbortController of the run being followed
  let catalogue = null; // capabilities, once loaded
  let me = null; // who is signed in

  // ------------------------------------------------------------------ DOM helpers
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function show(...nodes) {
    main.replaceChildren(...nodes);
    const heading = main.querySelector("h1");
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus();
      document.title = heading.textContent + " · Slipway";
    }
  }

  // ------------------------------------------------------------------ API
  function token() {
    return sessionStorage.getItem(KEY) || "";
  }

  async function api(method, path, body, headers) {
    const all = Object.assign({}, headers || {});
    if (token()) all.Authorization = "Bearer " + token();
    const init = { method, headers: all, credentials: "same-origin", cache: "no-store" };
    if (body !== undefined) init.body = body;
    const response = await fetch(path, init);
    let answer = null;
    try {
      answer = await response.json();
    } catch (_) {
      answer = { error: "bad_answer", message: "the server answered " + response.status };
    }
    if (response.status === 401 && path !== "/v1/whoami") signOut("Please sign in again.");
    return { status: response.status, ok: response.ok, body: answer };
  }

  function failure(answer) {
    return el("p", { class: "alert", role: "alert" },
      (answer.body && answer.body.message) || "Something went wrong (" + answer.status + ").");
  }

  // ------------------------------------------------------------------ sign-in
  function signOut(note) {
    sessionStorage.removeItem(KEY);
    catalogue = null;
    me = null;
    document.getElementById("nav").hidden = true;
    signIn(note);
  }

  function signIn(note) {
    const input = el("input", {
      id: "token", name: "token", type: "password", autocomplete: "off", spellcheck: "false",
      "aria-describedby": "token-help token-error", required: true,
    });
    const error = el("p", { id: "token-error", class: "error", "aria-live": "polite" }, note || "");
    const form = el("form", { class: "card", novalidate: true },
      el("div", { class: "field" },
        el("label", { for: "token" }, "Your access key"),
        el("p", { id: "token-help", class: "help" },
          "Use the sign-in link you were given, or paste the key your administrator made for "
          + "you (kubectl create token NAME -n NAMESPACE)."),
        input, error),
      el("button", { type: "submit", class: "primary" }, "Sign in"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const given = input.value.trim();
      if (!given) {
        error.textContent = "Please paste your access key.";
        input.setAttribute("aria-invalid", "true");
        input.focus();
        return;
      }
      sessionStorage.setItem(KEY, given);
      const who = await api("GET", "/v1/whoami");
      if (!who.ok) {
        sessionStorage.removeItem(KEY);
        error.textContent = "This key was not accepted. Check that you copied all of it, "
          + "or ask for a new one.";
        input.setAttribute("aria-invalid", "true");
        input.focus();
        return;
      }
      signedIn(who.body);
      route();
    });
    show(el("h1", {}, "Sign in"), form);
  }

  function signedIn(who) {
    me = who;
    document.getElementById("who").textContent = who.username;
    document.getElementById("nav").hidden = false;
  }

  // ------------------------------------------------------------------ catalogue
  async function loadCatalogue() {
    if (catalogue) return catalogue;
    const answer = await api("GET", "/v1/capabilities");
    if (!answer.ok) throw answer;
    catalogue = answer.body.items;
    return catalogue;
  }

  function capabilityLink(c) {
    return "#/new/" + [c.namespace, c.shipyard, c.stage, c.sequence].map(encodeURIComponent).join("/");
  }

  async function showCatalogue() {
    let items;
    try {
      items = await loadCatalogue();
    } catch (answer) {
      return show(el("h1", {}, "Checks"), failure(answer));
    }
    if (!items.length) {
      return show(el("h1", {}, "Checks"),
        el("p", {}, "There is nothing you may start yet. Ask your administrator for access."));
    }
    const several = new Set(items.map((c) => c.namespace)).size > 1;
    show(el("h1", {}, "What do you want to check?"),
      el("ul", { class: "catalogue" }, items.map((c) =>
        el("li", {},
          el("a", { class: "card capability", href: capabilityLink(c) },
            el("span", { class: "title" }, c.title),
            el("span", { class: "description" }, c.description),
            several ? el("span", { class: "where" }, c.namespace) : null)))));
  }

  // ------------------------------------------------------------------ the form
  function fieldId(name) {
    return "in-" + name.replace(/[^A-Za-z0-9_-]/g, "_");
  }

  function control(name, spec, required) {
    const id = fieldId(name);
    const common = { id, name, "aria-describedby": id + "-help " + id + "-error" };
    if (required) common["aria-required"] = "true";
    if (spec.contentMediaType) {
      return el("input", Object.assign(common, { type: "file", accept: spec.contentMediaType }));
    }
    if (spec.enum) {
      return el("select", common,
        required ? null : el("option", { value: "" }, "—"),
        spec.enum.map((v) => el("option", { value: String(v), selected: spec.default === v }, String(v))));
    }
    if (spec.type === "boolean") {
      return el("input", Object.assign(common, { type: "checkbox", checked: spec.default === true }));
    }
    const example = spec.examples && spec.examples.length ? String(spec.examples[0]) : null;
    const attrs = Object.assign(common, {
      type: spec.type === "number" || spec.type === "integer" ? "text"
        : spec.format === "email" ? "email" : "text",
      inputmode: spec.type === "number" ? "decimal" : spec.type === "integer" ? "numeric"
        : /phone|tel/i.test(name + (spec.title || "")) ? "tel" : null,
      placeholder: example ? "e.g. " + example : null,
      autocomplete: "off",
      value: spec.default !== undefined && spec.default !== null ? String(spec.default) : null,
    });
    return el("input", attrs);
  }

  // The value of a field (undefined: left empty) and the problem with it, if any.
  function read(name, spec, required, input) {
    if (spec.contentMediaType) {
      const file = input.files && input.files[0];
      if (!file) return required ? [undefined, "Please choose a file."] : [undefined, ""];
      if (!mediaFits(spec.contentMediaType, file.type)) {
        return [undefined, "Please choose a file of type " + spec.contentMediaType + "."];
      }
      return [file, ""];
    }
    if (spec.type === "boolean") return [input.checked, ""];
    const text = input.value.trim();
    if (!text) return required ? [undefined, "Please fill this in."] : [undefined, ""];
    if (spec.type === "number" || spec.type === "integer") {
      const number = Number(text.replace(",", "."));
      if (!Number.isFinite(number)) return [undefined, "Please enter a number."];
      if (spec.type === "integer" && !Number.isInteger(number)) {
        return [undefined, "Please enter a whole number."];
      }
      if (spec.minimum !== undefined && number < spec.minimum) {
        return [undefined, "Please enter at least " + spec.minimum + "."];
      }
      if (spec.maximum !== undefined && number > spec.maximum) {
        return [undefined, "Please enter at most " + spec.maximum + "."];
      }
      return [number, ""];
    }
    const example = spec.examples && spec.examples.length ? " (for example " + spec.examples[0] + ")" : "";
    if (spec.minLength !== undefined && text.length < spec.minLength) {
      return [undefined, "Please enter at least " + spec.minLength + " characters."];
    }
    if (spec.maxLength !== undefined && text.length > spec.maxLength) {
      return [undefined, "Please enter at most " + spec.maxLength + " characters."];
    }
    if (spec.pattern) {
      let matches = true;
      try {
        matches = new RegExp(spec.pattern, "u").test(text);
      } catch (_) {
        matches = true; // a pattern this browser cannot read: the server checks it
      }
      if (!matches) return [undefined, "This is not in the expected form" + example + "."];
    }
    if (spec.format === "email" && !/^[^@\s]+@[^@\s]+$/.test(text)) {
      return [undefined, "Please enter an email address."];
    }
    if (spec.enum && !spec.enum.map(String).includes(text)) {
      return [undefined, "Please choose one of the options."];
    }
    return [text, ""];
  }

  function mediaFits(wanted, given) {
    const [wt, ws] = wanted.toLowerCase().split("/");
    const [gt, gs] = (given || "").toLowerCase().split("/");
    return Boolean(gt && gs) && (wt === "*" || wt === gt) && (ws === "*" || ws === gs);
  }

  function setError(form, name, message) {
    const input = form.querySelector("#" + fieldId(name));
    const error = form.querySelector("#" + fieldId(name) + "-error");
    if (!input || !error) return false;
    error.textContent = message || "";
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
    return true;
  }

  async function showForm(ns, shipyard, stage, sequence) {
    let items;
    try {
      items = await loadCatalogue();
    } catch (answer) {
      return show(el("h1", {}, "Checks"), failure(answer));
    }
    const c = items.find((i) => i.namespace === ns && i.shipyard === shipyard
      && i.stage === stage && i.sequence === sequence);
    if (!c) {
      return show(el("h1", {}, "Not found"),
        el("p", {}, "This check does not exist, or you may not start it. "),
        el("p", {}, el("a", { href: "#/" }, "See the checks you may start")));
    }
    const props = (c.inputs && c.inputs.properties) || {};
    const required = new Set((c.inputs && c.inputs.required) || []);
    const names = (c.order || []).filter((n) => n in props);
    const formError = el("div", { "aria-live": "assertive" });
    const button = el("button", { type: "submit", class: "primary" }, "Start the check");
    const form = el("form", { class: "card", novalidate: true },
      names.map((name) => {
        const spec = props[name];
        const id = fieldId(name);
        const isBool = spec.type === "boolean" && !spec.contentMediaType && !spec.enum;
        const label = el("label", { for: id }, spec.title || name,
          required.has(name) ? null : el("span", { class: "optional" }, " (optional)"));
        const input = control(name, spec, required.has(name));
        input.addEventListener("blur", () => {
          if (!spec.contentMediaType) setError(form, name, read(name, spec, required.has(name), input)[1]);
        });
        input.addEventListener("input", () => {
          if (!read(name, spec, required.has(name), input)[1]) setError(form, name, "");
        });
        input.addEventListener("change", () => setError(form, name, read(name, spec, required.has(name), input)[1]));
        return el("div", { class: isBool ? "field check" : "field" },
          isBool ? [input, label] : [label],
          el("p", { id: id + "-help", class: "help" }, spec.description || ""),
          isBool ? null : input,
          el("p", { id: id + "-error", class: "error" }));
      }),
      formError, button);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      formError.replaceChildren();
      const data = {};
      let first = null;
      for (const name of names) {
        const input = form.querySelector("#" + fieldId(name));
        const [value, problem] = read(name, props[name], required.has(name), input);
        setError(form, name, problem);
        if (problem && !first) first = input;
        if (value !== undefined) data[name] = value;
      }
      if (first) {
        first.focus();
        return;
      }
      button.disabled = true;
      button.textContent = "Starting…";
      try {
        await start(c, data, form, formError);
      } finally {
        button.disabled = false;
        button.textContent = "Start the check";
      }
    });
    show(el("h1", {}, c.title), el("p", { class: "lead" }, c.description), form);
  }

  async function start(c, data, form, formError) {
    for (const [name, value] of Object.entries(data)) {
      if (!(value instanceof File)) continue;
      const query = "?capability=" + encodeURIComponent([c.shipyard, c.stage, c.sequence].join("/"))
        + "&input=" + encodeURIComponent(name);
      const up = await api("POST", "/v1/namespaces/" + encodeURIComponent(c.namespace) + "/uploads" + query,
        value, { "Content-Type": value.type || "application/octet-stream" });
      if (!up.ok) {
        setError(form, name, up.body.message);
        form.querySelector("#" + fieldId(name)).focus();
        return;
      }
      data[name] = { upload: up.body.upload, name: value.name };
    }
    const event = {
      specversion: "1.0",
      id: randomId(),
      source: "slipway-web",
      type: c.eventType,
      datacontenttype: "application/json",
      data: Object.assign({}, data, { shipyard: c.shipyard }),
    };
    const answer = await api("POST", "/v1/namespaces/" + encodeURIComponent(c.namespace) + "/events",
      JSON.stringify(event), { "Content-Type": "application/cloudevents+json" });
    if (answer.status === 422 && answer.body.fields) {
      let focused = false;
      for (const [name, message] of Object.entries(answer.body.fields)) {
        const shown = setError(form, name, message.charAt(0).toUpperCase() + message.slice(1) + ".");
        if (shown && !focused) {
          form.querySelector("#" + fieldId(name)).focus();
          focused = true;
        }
        if (!shown) formError.replaceChildren(failure(answer));
      }
      return;
    }
    if (!answer.ok) {
      formError.replaceChildren(failure(answer));
      return;
    }
    location.hash = "#/run/" + encodeURIComponent(c.namespace) + "/" + encodeURIComponent(answer.body.run);
  }

  function randomId() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // ------------------------------------------------------------------ a run
  const WORDS = {
    pass: ["Pass", "Everything checked out."],
    warning: ["Warning", "It ran, but some things look doubtful or could not be confirmed."],
    fail: ["Fail", "This did not pass the checks."],
  };
  const STATES = { waiting: "Waiting", running: "Running", done: "Done" };

  function taskLine(t, finished) {
    let state = t.state === "done" && t.result ? STATES.done + " — " + t.result : STATES[t.state];
    if (finished && t.state !== "done") state = "Not run";
    return el("li", { class: "task " + t.state + (t.result ? " " + t.result : "") },
      el("span", { class: "task-name" }, t.name),
      el("span", { class: "state" }, state),
      t.statusMessages.map((m) => el("span", { class: "said" }, m)),
      (t.findings || []).map((m) => el("span", { class: "found" }, m)));
  }

  function verdict(view) {
    if (!view.finished) {
      return el("p", { class: "verdict running" }, "Running… this page updates by itself.");
    }
    const [word, sentence] = WORDS[view.result] || ["Finished", ""];
    const invalid = view.reason === "Invalid";
    return el("section", { class: "verdict " + (view.result || ""), "aria-label": "Verdict" },
      el("p", { class: "word" }, word),
      view.score !== null && view.score !== undefined
        ? el("p", { class: "score" }, "Score " + Math.round(view.score) + " / 100") : null,
      el("p", {}, invalid ? "The check could not run: " + view.message : sentence),
      view.doubts.length ? el("div", {},
        el("h2", {}, "What is doubtful"),
        el("ul", { class: "doubts" }, view.doubts.map((d) =>
          el("li", {}, d.check + (d.value === null ? " — could not be checked" : " — not met"))))) : null);
  }

  function runBody(view) {
    const link = location.origin + location.pathname + "#/run/" + encodeURIComponent(view.namespace)
      + "/" + encodeURIComponent(view.name);
    const copy = el("button", { type: "button", class: "link" }, "Copy link");
    const copied = el("span", { class: "help", "aria-live": "polite" });
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(link);
        copied.textContent = " Copied.";
      } catch (_) {
        copied.textContent = " Select the link and copy it.";
      }
    });
    const asked = Object.entries(view.inputs || {}).map(([k, v]) =>
      el("li", {}, k + ": " + (v && typeof v === "object" ? (v.file || JSON.stringify(v)) : String(v))));
    return [
      el("div", { "aria-live": "polite", class: "status" }, verdict(view)),
      el("h2", {}, "Steps"),
      el("ol", { class: "tasks" }, view.tasks.map((t) => taskLine(t, view.finished))),
      asked.length ? el("details", {}, el("summary", {}, "What was asked"), el("ul", {}, asked)) : null,
      el("p", { class: "share" }, "Share this result: ",
        el("a", { href: link, class: "permalink" }, link), " ", copy, copied),
      el("p", {}, el("a", { href: "#/new/" + [view.namespace, view.shipyard, view.stage, view.sequence]
        .map(encodeURIComponent).join("/") }, "Start another: " + view.title)),
    ];
  }

  async function showRun(ns, name) {
    const body = el("div", { class: "run" }, el("p", {}, "Loading…"));
    show(el("h1", {}, "Result"), body);
    const heading = main.querySelector("h1");
    const controller = new AbortController();
    stream = controller;
    let ended = false;
    let tries = 0;
    while (!ended && !controller.signal.aborted && tries < 30) {
      tries += 1;
      try {
        const headers = token() ? { Authorization: "Bearer " + token() } : {};
        const response = await fetch("/v1/namespaces/" + encodeURIComponent(ns) + "/sequenceruns/"
          + encodeURIComponent(name) + "/events", { headers, signal: controller.signal, cache: "no-store" });
        if (!response.ok) {
          let answer = {};
          try { answer = await response.json(); } catch (_) { /* not JSON */ }
          if (response.status === 401) return signOut("Please sign in again.");
          body.replaceChildren(failure({ status: response.status, body: answer }));
          return;
        }
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const chunk = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            let kind = "message";
            let data = "";
            for (const line of chunk.split("\n")) {
              if (line.startsWith("event:")) kind = line.slice(6).trim();
              else if (line.startsWith("data:")) data += line.slice(5).trim();
            }
            if (!data) continue;
            const view = JSON.parse(data);
            if (view.deleted) {
              body.replaceChildren(el("p", { class: "alert", role: "alert" }, "This run was deleted."));
              ended = true;
              continue;
            }
            heading.textContent = view.title;
            document.title = view.title + " · Slipway";
            body.replaceChildren(...runBody(view).filter(Boolean));
            if (kind === "end") ended = true;
          }
        }
      } catch (error) {
        if (controller.signal.aborted) return;
      }
      if (!ended) await new Promise((r) => setTimeout(r, 1000));
    }
  }

  // ------------------------------------------------------------------ past runs
  async function showRuns() {
    let items;
    try {
      items = await loadCatalogue();
    } catch (answer) {
      return show(el("h1", {}, "My results"), failure(answer));
    }
    const list = el("ol", { class: "runs" });
    const more = el("div");
    show(el("h1", {}, "My results"), list, more);
    const namespaces = [...new Set(items.map((c) => c.namespace))];
    const runs = [];
    for (const ns of namespaces) {
      const answer = await api("GET", "/v1/namespaces/" + encodeURIComponent(ns) + "/sequenceruns?mine=true&limit=20");
      if (answer.ok) runs.push(...answer.body.items);
    }
    runs.sort((a, b) => String(b.createdAt).localeCompare(String(a.createdAt)));
    if (!runs.length) {
      list.replaceWith(el("p", {}, "You have not started any check yet. ",
        el("a", { href: "#/" }, "Start one")));
      return;
    }
    list.replaceChildren(...runs.map((r) => {
      const word = r.finished ? (WORDS[r.result] || ["Finished"])[0] : "Running";
      return el("li", {},
        el("a", { href: "#/run/" + encodeURIComponent(r.namespace) + "/" + encodeURIComponent(r.name) },
          el("span", { class: "title" }, r.title),
          el("span", { class: "badge " + (r.finished ? r.result || "" : "running") }, word),
          el("span", { class: "when" }, r.createdAt ? new Date(r.createdAt).toLocaleString() : "")));
    }));
  }

  // ------------------------------------------------------------------ routing
  async function route() {
    if (stream) {
      stream.abort();
      stream = null;
    }
    if (location.hash.startsWith("#token=")) return signInFromLink();
    if (!me) return signIn("");
    const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
    if (parts[0] === "new" && parts.length === 5) return showForm(parts[1], parts[2], parts[3], parts[4]);
    if (parts[0] === "run" && parts.length === 3) return showRun(parts[1], parts[2]);
    if (parts[0] === "runs") return showRuns();
    return showCatalogue();
  }

  // A sign-in link (#token=…): keep the token in this tab and take it out of the address bar.
  async function signInFromLink() {
    sessionStorage.setItem(KEY, decodeURIComponent(location.hash.slice(7)));
    history.replaceState(null, "", location.pathname + location.search + "#/");
    catalogue = null;
    me = null;
    return startSession("This sign-in link was not accepted. Ask for a new one.");
  }

  // Behind an auth proxy the requests carry the header without us: whoami tells.
  async function startSession(refused) {
    const who = await api("GET", "/v1/whoami");
    if (!who.ok) {
      const had = Boolean(token());
      sessionStorage.removeItem(KEY);
      return signIn(had ? refused : "");
    }
    signedIn(who.body);
    return route();
  }

  function boot() {
    document.getElementById("signout").addEventListener("click", () => signOut(""));
    window.addEventListener("hashchange", route);
    if (location.hash.startsWith("#token=")) return signInFromLink();
    return startSession("Your sign-in has expired. Please sign in again.");
  }

  boot();
})();
