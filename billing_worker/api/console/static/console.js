// The console's actions: a <form data-api="/v1/..."> is sent to the management API (POST
// unless data-method says otherwise) as JSON, or one field's text as it is (data-raw), with
// the session's CSRF token; the API's problem is shown field by field in the form, and on
// success the page reloads to show what changed.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function bodyOf(form, submitter) {
  const body = {};
  for (const field of form.elements) {
    if (!field.name || field.disabled || field.tagName === "BUTTON") continue;
    if (field.value === "") continue;
    if (field.dataset.type === "bool") body[field.name] = field.value === "true";
    else if (field.dataset.type === "int") body[field.name] = Number(field.value);
    else if (field.dataset.type === "list") body[field.name] = [field.value];
    else body[field.name] = field.value;
  }
  if (submitter && submitter.name === "dry_run") body.dry_run = true;
  return body;
}

// What to send: the form's fields as JSON, or one field's text as it is (a catalog).
function requestOf(form, submitter) {
  const method = form.dataset.method || "POST";
  if (form.dataset.raw) {
    const type = form.dataset.contentType || "text/plain";
    return { method, type, body: form.elements[form.dataset.raw].value, dryRun: false };
  }
  const body = bodyOf(form, submitter);
  const json = method === "DELETE" ? undefined : JSON.stringify(body);
  return { method, type: "application/json", body: json, dryRun: Boolean(body.dry_run) };
}

function showProblem(outcome, problem) {
  outcome.className = "outcome problem";
  outcome.textContent = problem.detail || problem.title || "Refused";
  const errors = problem.errors || [];
  if (errors.length) {
    const list = document.createElement("ul");
    for (const error of errors) {
      const item = document.createElement("li");
      const field = document.createElement("code");
      field.textContent = error.field;
      item.append(field, `: ${error.reason}`);
      list.append(item);
    }
    outcome.append(list);
  }
}

function showPreview(form, outcome, answer) {
  const invoice = answer.invoice;
  outcome.className = "outcome preview";
  outcome.textContent = invoice
    ? `Would invoice ${invoice.currency} ${invoice.total}: ` +
      invoice.items.map((i) => `${i.description} ${i.amount}`).join("; ")
    : "Nothing would be invoiced.";
  const confirm = form.querySelector("[data-confirm]");
  if (confirm) confirm.hidden = false;
}

document.addEventListener("submit", async (event) => {
  const form = event.target.closest("form[data-api]");
  if (!form) return;
  event.preventDefault();
  const request = requestOf(form, event.submitter);
  const outcome = form.querySelector(".outcome");
  outcome.className = "outcome";
  outcome.textContent = "…";
  let response;
  try {
    response = await fetch(form.dataset.api, {
      method: request.method,
      credentials: "same-origin",
      headers: { "Content-Type": request.type, "X-CSRF-Token": csrfToken() },
      body: request.body,
    });
  } catch (error) {
    showProblem(outcome, { detail: `The API could not be reached: ${error}` });
    return;
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    showProblem(outcome, answer);
    return;
  }
  if (request.dryRun) {
    showPreview(form, outcome, answer);
    return;
  }
  outcome.textContent = "Done.";
  window.location.reload();
});

// The timeline's chart: each account's balance due over time (a stepped line), and under the
// lines a band coloured by its standing, drawn with uPlot.
const STANDING_COLOURS = {
  active: "#1f9d55", grace: "#d69e2e", degraded: "#dd6b20", suspended: "#c53030",
  cancelled: "#4a5568", paused: "#805ad5",
};
const LINE_COLOURS = ["#2f5bea", "#b83280", "#2c7a7b", "#975a16", "#553c9a"];

function drawTimeline(root) {
  const holder = root.querySelector("#timeline-chart");
  const data = root.querySelector("#timeline-points");
  if (!holder || !data || typeof uPlot === "undefined") return;
  const points = JSON.parse(data.textContent);
  const days = [...new Set(points.map((p) => p.day))].sort();
  const accounts = [...new Set(points.map((p) => p.account))];
  const at = (day) => Date.parse(`${day}T00:00:00Z`) / 1000;
  const byKey = new Map(points.map((p) => [`${p.account}|${p.day}`, p]));
  // carry each account's last known state forward to every day
  const series = accounts.map((account) => {
    let last = null;
    return days.map((day) => (last = byKey.get(`${account}|${day}`) || last));
  });
  const balances = series.map((states) => states.map((s) => (s ? Number(s.balance) : null)));
  const bands = {
    hooks: {
      drawClear: [(u) => {
        const { ctx } = u;
        const height = 10 * devicePixelRatio;
        series.forEach((states, row) => {
          states.forEach((state, i) => {
            if (!state) return;
            const x0 = u.valToPos(at(days[i]), "x", true);
            const x1 = i + 1 < days.length ? u.valToPos(at(days[i + 1]), "x", true)
                                           : u.bbox.left + u.bbox.width;
            ctx.fillStyle = STANDING_COLOURS[state.standing] || "#999";
            ctx.fillRect(x0, u.bbox.top + u.bbox.height - height * (row + 1), x1 - x0, height);
          });
        });
      }],
    },
  };
  const options = {
    width: holder.clientWidth || 560, height: 260, plugins: [bands],
    scales: { x: { time: true } },
    series: [{}].concat(accounts.map((name, i) => ({
      label: `${name} balance`, stroke: LINE_COLOURS[i % LINE_COLOURS.length], width: 2,
      paths: uPlot.paths.stepped({ align: 1 }),
    }))),
    axes: [{}, { label: "balance due" }],
  };
  holder.replaceChildren();
  new uPlot(options, [days.map(at)].concat(balances), holder);
}

document.addEventListener("htmx:afterSwap", (event) => drawTimeline(event.detail.target));
